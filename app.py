"""Hugging Face Space entry point: the segkit demo (see demo/ui.py). Locally: python app.py."""

import os

from trainer import quiet

quiet.install()  # known-harmless third-party warnings, before torch / sam2 / detectron2 load

from demo.ui import build_app, launch_kwargs  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), **launch_kwargs())
