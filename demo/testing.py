"""Helpers for the app's tests and benchmarks: a local hub with random-init models, and a served app."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from demo import models
from demo.ui import build_app, launch_kwargs
from trainer.checkpoint import WEIGHTS_NAME, save_weights
from trainer.d2_ft import model as d2_model
from trainer.data.synthetic import make_dataset
from trainer.sam2_model.model import Sam2Spec, save_spec
from trainer.sam2_model.model import build_model as build_sam2_model
from trainer.semantic import model as semantic_model
from trainer.semantic.labels import semantic_classes


def make_sam2_repo(folder: str | Path, image_size: int = 256, seed: int = 0) -> Path:
    """A sam2 model folder (model_config.yaml + model.safetensors) with random-init weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    spec = Sam2Spec(size="tiny", image_size=image_size)
    save_weights(build_sam2_model(spec).state_dict(), folder / WEIGHTS_NAME)
    save_spec(spec, folder)
    return folder


def make_d2_repo(folder: str | Path, class_names: tuple[str, ...] = ("vessel", "liquid")) -> Path:
    """A small detectron2 Mask R-CNN folder (ResNet-18, GN, short test size) with random-init weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    spec = d2_model.D2Spec(class_names=list(class_names), norm="GN", depth=18, freeze_at=0, min_size_train=[256],
                           max_size_train=320, min_size_test=256, max_size_test=320)
    cfg = d2_model.build_cfg(spec)
    save_weights(d2_model.build_model(cfg).state_dict(), folder / WEIGHTS_NAME)
    d2_model.save_spec(spec, folder, cfg)
    return folder


def make_semantic_repo(folder: str | Path, class_names: tuple[str, ...] = ("vessel", "liquid"),
                       image_size: int = 128, seed: int = 0) -> Path:
    """A semantic model folder (sam2 tiny encoder + UNet head, random init): model_config.yaml + model.safetensors.

    A random head's class map is one class everywhere (its bias outweighs the features); its bias is set so each
    class's logits are centred on a synthetic scene, so the map varies with the image as a trained model's does."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    spec = semantic_model.SemanticSpec(semantic_classes(list(class_names)), "tiny", image_size)
    model = semantic_model.build_model(spec)
    logits = semantic_model.SemanticSegmenter(model, spec).logits([make_dataset(1, image_size, seed=0)[0].image])[0]
    with torch.no_grad():
        model.head.classifier[0].bias -= logits.flatten(1).median(1).values
    save_weights(model.state_dict(), folder / WEIGHTS_NAME)
    save_spec(spec, folder)
    return folder


def synthetic_image(path: str | Path, size: int = 128) -> str:
    """A small synthetic RGB PNG (from the kit's synthetic vessel scenes)."""
    image = make_dataset(1, size, seed=0)[0].image
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return str(path)


def redrawn(selector: str) -> str:
    """A page function `(before) => bool` for Playwright's wait_for_function: the image `selector` shows a src other
    than `before` and its pixels have loaded. Wait for this, not for the new src alone, before clicking a redrawn
    Gradio Image: its select event maps the click through the img's naturalWidth, and a click that lands while the
    new src still loads is dropped without a request (seen 4 times in 30 under load, as a lost click)."""
    return (f"(before) => {{ const img = document.querySelector({json.dumps(selector)}); "
            "return !!img && img.getAttribute('src') !== before && img.complete && img.naturalWidth > 0; }")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """Launch the Blocks on 127.0.0.1 in this process's threads; yields the URL."""
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               ssr_mode=False, **launch_kwargs())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def offline_env(hub: str | Path, image_size: int = 256) -> dict[str, str]:
    """Environment for a small, offline app: random-init 256-px base model, the given local hub; bound to loopback
    (serve()), so the open rules unless SEGKIT_PUBLIC=1 asks for the public ones."""
    return {"SEGKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "SEGKIT_IMAGE_SIZE": str(image_size),
            "GRADIO_SERVER_NAME": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
            "SEGKIT_LOCAL_HUB": str(hub),
            "SEGKIT_MAX_SIDE": os.environ.get("SEGKIT_MAX_SIDE", "1024"), "GRADIO_ANALYTICS_ENABLED": "False"}


@contextlib.contextmanager
def running_app(root: str | Path, with_d2: bool = True, image_size: int = 256,
                with_semantic: bool = True) -> Iterator[dict]:
    """A local hub under `root` (random-init sam2 "me/sam2-ft", detectron2 "me/d2-ft", semantic "me/semantic-ft"),
    env set, the app served.

    Yields {"url", "hub", "image"}; the environment is restored afterwards.
    """
    root = Path(root)
    hub = root / "hub"
    saved = dict(os.environ)
    os.environ.update(offline_env(hub, image_size))
    try:
        make_sam2_repo(hub / "me" / "sam2-ft", image_size=image_size, seed=1)
        if with_d2:
            make_d2_repo(hub / "me" / "d2-ft")
        if with_semantic:
            make_semantic_repo(hub / "me" / "semantic-ft")
        image = synthetic_image(root / "scene.png")
        models.clear_caches()

        with serve(build_app()) as url:
            yield {"url": url, "hub": hub, "image": image}
    finally:
        models.clear_caches()
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def app_process(root: str | Path, env: dict[str, str] | None = None, timeout_s: float = 300,
                **kwargs: bool | int) -> Iterator[dict]:
    """`running_app` in a child process, so its memory is its own to measure (`peak_rss_mb`): yields running_app's
    dict (url, hub, image) plus the child's "pid". `env` is added to this process's environment for the child;
    kwargs go to running_app (with_d2, with_semantic, image_size)."""
    cmd = [sys.executable, "-m", "demo.testing", str(root), json.dumps(kwargs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parents[1])
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the app did not start within {timeout_s:.0f} s (exit code {proc.poll()})")
        yield {**json.loads(line), "pid": proc.pid}
    finally:
        proc.stdin.close()  # the child serves until its stdin closes
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


if __name__ == "__main__":  # app_process's child: serve, print where, stop when stdin closes
    with running_app(sys.argv[1], **json.loads(sys.argv[2])) as served:
        print(json.dumps({key: str(value) for key, value in served.items()}), flush=True)
        sys.stdin.read()
