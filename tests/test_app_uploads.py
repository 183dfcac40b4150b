"""Scans uploaded to the app (16-bit PNG/TIFF, float32 TIFF) are shown and segmented as the trainers see them.

Before: PIL's convert("RGB") clipped 16-bit values, so a scan came back uniformly white and the mask score was 0.
The models are random-init (nothing downloads here), so "the click gets the object" is checked as "the click gets
exactly what the same model gives on the data layer's 8-bit image of that scan" — the image the trainer trains on.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from trainer.data.normalize import apply_normalization, to_uint8_rgb  # noqa: E402
from trainer.data.readers.images import read_image  # noqa: E402
from trainer.data.synthetic import make_scene  # noqa: E402

BASE = "facebook/sam2.1-hiera-tiny"
SCENE = make_scene(5, 128, max_vessels=2)


def _scan(kind: str) -> np.ndarray:
    """The synthetic scene as a single-channel scan: values far outside 0..255, as IR / microscopy cameras give."""
    gray = SCENE.image.astype(np.float64).mean(axis=2)
    if kind == "uint16":
        return (gray * 180 + 1200).astype(np.uint16)  # ~1200..47100: an 8-bit view clips it all to white
    return (gray / 255 * 3.5 - 1.25).astype(np.float32)  # a float scan, negative values included


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from demo.testing import make_sam2_repo, running_app

    root = tmp_path_factory.mktemp("uploads")
    with running_app(root) as served:
        # a model trained on scans records its normalisation (summary.json, as the trainers write it)
        recorded = make_sam2_repo(served["hub"] / "me" / "sam2-scans", image_size=256, seed=2)
        (recorded / "summary.json").write_text(json.dumps({"kind": "sam2", "dataset": {
            "path": "scans", "normalization": "percentile_30_70"}}))
        files = {}
        for name, kind in [("scan16.png", "uint16"), ("scan16.tif", "uint16"), ("scan32.tif", "float32")]:
            Image.fromarray(_scan(kind)).save(root / name)
            files[name] = str(root / name)
        served["files"] = files
        served["client"] = Client(served["url"], verbose=False)
        yield served


def _shown(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.int16)


@pytest.mark.parametrize("name", ["scan16.png", "scan16.tif", "scan32.tif"])
def test_scan_is_shown_and_segmented_as_the_trainer_sees_it(app, name):
    from demo import models
    from demo.images import image_key

    path = app["files"][name]
    raw = read_image(path)
    assert raw.dtype in (np.uint16, np.float32) and raw.ndim == 2  # the file really is a 16-bit / float scan
    expected, method = to_uint8_rgb(raw)  # what the data layer gives the trainers
    shown, _, info = app["client"].predict(handle_file(path), BASE, api_name="/load_image")
    image = _shown(shown)
    assert image.std() > 20, "flat image"  # was: every pixel 255
    assert np.abs(image - expected).mean() < 8 and np.corrcoef(image.ravel(), expected.ravel())[0, 1] > 0.97  # JPEG
    assert f"{raw.dtype} grayscale, {method} stretch" in info
    vessel = SCENE.masks[0]
    ys, xs = np.nonzero(vessel)
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    overlay, mask, _, info = app["client"].predict(handle_file(path), json.dumps({"points": [[x, y, 1]]}), BASE,
                                                   "fp32", False, api_name="/segment")
    handle = models.get_sam2(BASE)
    want = models.predict_prompt(handle, expected, image_key(expected), "fp32", np.array([[x, y]], np.float32),
                                 np.array([1]), None, False)
    assert np.array_equal(np.asarray(Image.open(mask)) > 0, want.masks[0])
    assert info.startswith(f"score {want.scores[0]:.3f}")


def test_the_picked_models_recorded_normalisation_is_used(app):
    path = app["files"]["scan16.png"]
    raw = read_image(path)
    shown, _, info = app["client"].predict(handle_file(path), "me/sam2-scans", api_name="/load_image")
    recorded, default = apply_normalization(raw, "percentile_30_70"), to_uint8_rgb(raw)[0]
    assert np.abs(recorded.astype(np.int16) - default).mean() > 25  # far apart, JPEG noise cannot blur them
    assert np.abs(_shown(shown) - recorded).mean() < 8
    assert "percentile_30_70 stretch" in info


def test_every_tab_brings_scans_to_rgb(app):
    path = handle_file(app["files"]["scan32.tif"])
    client = app["client"]
    overlay, info = client.predict(path, BASE, "fp32", 4, 0.0, 0.0, 0, api_name="/automatic")
    outputs = [overlay, client.predict(path, "me/d2-ft", "fp32", 0.0, api_name="/detectron2")[0],
               *client.predict(path, json.dumps({"points": [[40, 60, 1]]}), BASE, "me/sam2-scans", "fp32",
                               api_name="/compare")[:2]]
    for image in outputs:
        assert _shown(image).std() > 20


def test_errors_name_no_server_path(app):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:  # the message names the local hub folder it looked in
        app["client"].predict(handle_file(app["files"]["scan16.png"]), "nobody/missing", api_name="/load_image")
    message = str(info.value)
    assert "nobody/missing: not in the local hub (hub)" in message and str(app["hub"]) not in message
