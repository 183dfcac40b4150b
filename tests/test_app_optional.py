"""The app without Detectron2 (a Space whose build skipped it): it starts, the SAM2 tabs work, the Detectron2 tab
says why it cannot run. Served from its own interpreter, where an import hook hides detectron2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SERVER = textwrap.dedent("""
    import sys

    class HideDetectron2:  # what an interpreter without detectron2 installed answers
        def find_spec(self, name, path=None, target=None):
            if name == "detectron2" or name.startswith("detectron2."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, HideDetectron2())
    from trainer import quiet
    quiet.install()
    from demo.testing import running_app

    with running_app(sys.argv[1], with_d2=False) as app:
        print("URL", app["url"], app["image"], flush=True)
        sys.stdin.read()  # serve until the test closes stdin
    print("IMPORTED", sorted(m for m in sys.modules if m.startswith("detectron2")), flush=True)
""")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("no_d2")
    log = open(root / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(root)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("URL "), line + (root / "server.log").read_text()
        _, url, image = line.split()
        yield {"client": Client(url, verbose=False), "url": url, "image": image, "proc": proc}
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=60)
        log.close()


def test_sam2_tabs_work_without_detectron2(served):
    client, image = served["client"], handle_file(served["image"])
    *_, info = client.predict(image, json.dumps({"points": [[40, 50, 1]]}), "facebook/sam2.1-hiera-tiny", "fp32",
                              False, api_name="/segment")
    assert info.startswith("score ")
    _, info = client.predict(image, "facebook/sam2.1-hiera-tiny", "fp32", 4, 0.0, 0.0, 0, api_name="/automatic")
    assert "masks" in info


def test_detectron2_tab_says_why(served):
    import requests

    config = requests.get(served["url"] + "config", timeout=30).json()
    notes = [c["props"].get("value") for c in config["components"] if c["props"].get("elem_id") == "d2-missing"]
    assert notes and "Detectron2 is not installed on this server" in notes[0]
    with pytest.raises(AppError, match="Detectron2 is not installed on this server"):
        served["client"].predict(handle_file(served["image"]), "me/d2-ft", "fp32", 0.5, api_name="/detectron2")


def test_nothing_imported_detectron2(served):
    proc = served["proc"]
    proc.stdin.close()  # the server stops and reports what it imported
    out = proc.stdout.read()
    proc.wait(timeout=60)
    assert "IMPORTED []" in out, out
