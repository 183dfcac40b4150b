"""The demo's pure parts: prompt JSON, upload checks, overlays, the LRU cache (no server, no model)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from demo import prompts as P
from demo import render
from demo.images import UploadError, image_key, load_image
from demo.models import LRU


def test_clicks_build_points_then_a_box_from_two_corners():
    state = P.add_click(P.Prompts(), 10, 20, P.MODES[0])
    state = P.add_click(state, 30, 5, P.MODES[1])
    state = P.add_click(state, 50, 60, P.MODES[2])
    assert state.corner == [50, 60] and state.box is None
    state = P.add_click(state, 40, 90, P.MODES[2])
    assert state.box == [40, 60, 50, 90] and state.corner is None
    coords, labels, box = P.parse(state.to_json(), (100, 100, 3)).arrays()
    assert coords.tolist() == [[10, 20], [30, 5]] and labels.tolist() == [1, 0] and box.tolist() == [40, 60, 50, 90]


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"), ("[1, 2]", "expected"), ('{"points": [[1, 2]]}', "list of 3 numbers"),
    ('{"points": [[1, 2, 5]]}', "label is 1"), ('{"box": [1, 2, 3]}', "box must be"),
    ('{"points": [[1, 200, 1]]}', "outside the 100x50 image"),
])
def test_bad_prompt_json_is_explained(text, message):
    with pytest.raises(ValueError, match=message):
        P.parse(text, (50, 100, 3))


def test_empty_prompts():
    assert P.parse("").empty and P.parse(None).empty and P.parse('{"points": [], "box": null}').empty


def test_large_uploads_are_downscaled_keeping_aspect(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_MAX_SIDE", "64")
    path = tmp_path / "wide.jpg"
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(path)
    assert load_image(path).shape == (32, 64, 3)
    gray = tmp_path / "gray.png"
    Image.fromarray(np.zeros((10, 20), np.uint8)).save(gray)
    assert load_image(gray).shape == (10, 20, 3)


def test_missing_and_non_image_files(tmp_path):
    with pytest.raises(UploadError, match="no image"):
        load_image(None)
    with pytest.raises(UploadError, match="nope.png: file not found"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "x.jpg").write_bytes(b"\x00" * 100)
    with pytest.raises(UploadError, match="x.jpg: not an image"):
        load_image(tmp_path / "x.jpg")


def test_image_key_depends_on_content_and_shape():
    a = np.zeros((4, 6, 3), np.uint8)
    assert image_key(a) == image_key(a.copy())
    assert image_key(a) != image_key(a.reshape(6, 4, 3))
    b = a.copy()
    b[0, 0, 0] = 1
    assert image_key(a) != image_key(b)


def test_overlay_colors_mask_and_points():
    image = np.zeros((40, 40, 3), np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[5:15, 5:15] = True
    out = render.mask_overlay(image, mask, points=[[30, 30, 1], [30, 10, 0]], box=None, corner=None)
    assert out.shape == image.shape and out[10, 10, 2] > 100 and out[25, 25].sum() == 0
    assert tuple(out[30, 30]) == render.POSITIVE and tuple(out[10, 30]) == render.NEGATIVE


def test_iou():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    assert render.iou(a, b) == pytest.approx(1 / 3) and render.iou(a, a) == 1.0


def test_lru_evicts_least_recently_used():
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2
