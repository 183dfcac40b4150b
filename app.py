"""Hugging Face Space entry point: the segkit demo (see demo/ui.py). Locally: python app.py (public rules; bind to
127.0.0.1 with GRADIO_SERVER_NAME, or set SEGKIT_OPEN=1, for the open ones: see demo/settings.py)."""

from trainer import quiet

quiet.install()  # known-harmless third-party warnings, before torch / sam2 / detectron2 load

from demo import settings  # noqa: E402
from demo.ui import build_app, launch_kwargs  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    demo.launch(server_name=settings.get().server_name, server_port=settings.get().server_port, **launch_kwargs())
