"""The Space end to end through gradio_client: real (random-init) SAM2 and Detectron2 models on CPU."""

from __future__ import annotations

import json
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

BASE = "facebook/sam2.1-hiera-tiny"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from demo.testing import running_app

    with running_app(tmp_path_factory.mktemp("app")) as served:
        served["client"] = Client(served["url"], verbose=False)
        yield served


def _segment(app, prompts: dict, model: str = BASE, precision: str = "fp32", multimask: bool = False):
    return app["client"].predict(handle_file(app["image"]), json.dumps(prompts), model, precision, multimask,
                                 api_name="/segment")


def test_points_give_mask_and_overlay_of_image_size(app):
    from demo import models

    info = app["client"].predict(handle_file(app["image"]), BASE, "fp32", api_name="/embed")
    assert "embedding" in info and "ms" in info
    size_after_embed = models.embedding_cache_size()
    overlay, mask, candidates, info = _segment(app, {"points": [[40, 50, 1], [100, 100, 0]]})
    assert "embed cached" in info and "decode" in info and "render" in info
    assert models.embedding_cache_size() == size_after_embed  # the click reused the upload's embedding
    image = np.asarray(Image.open(app["image"]))
    assert np.asarray(Image.open(overlay)).shape == image.shape
    mask_px = np.asarray(Image.open(mask).convert("L"))  # a 1-bit PNG
    assert mask_px.shape == image.shape[:2] and set(np.unique(mask_px)) <= {0, 255}
    assert candidates == []
    # the overlay shows the prompts: a green dot at the positive point
    r, g, b = np.asarray(Image.open(overlay).convert("RGB"))[50, 40].astype(int)
    assert g > r + 60 and g > b + 60


def test_box_with_multimask_gives_three_scored_candidates(app):
    overlay, mask, candidates, info = _segment(app, {"points": [], "box": [10, 10, 90, 100]}, multimask=True)
    assert len(candidates) == 3
    scores = [float(c["caption"].split(" ")[1]) for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert info.startswith("score ") and len(info.split("|")[0].split(",")) == 3


def test_new_image_is_embedded_once(app, tmp_path):
    from demo import models

    other = tmp_path / "other.png"
    Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(other)
    before = models.embedding_cache_size()
    prompts = json.dumps({"points": [[5, 5, 1]]})
    infos = [app["client"].predict(handle_file(str(other)), prompts, BASE, "fp32", False, api_name="/segment")[3]
             for _ in range(2)]
    assert "embed cached" not in infos[0] and "embed cached" in infos[1]
    assert models.embedding_cache_size() == before + 1


def test_automatic_masks(app):
    overlay, info = app["client"].predict(handle_file(app["image"]), BASE, "fp32", 4, 0.0, 0.0, 0,
                                          api_name="/automatic")
    count = int(info.split(" masks")[0])
    assert count >= 1 and "generate" in info
    assert np.asarray(Image.open(overlay)).shape[:2] == (128, 128)


def test_detectron2_instances(app):
    overlay, table, info = app["client"].predict(handle_file(app["image"]), "me/d2-ft", "fp32", 0.0,
                                                 api_name="/detectron2")
    rows = table["data"]
    assert info.startswith(f"{len(rows)} instances")
    assert all(row[1] in ("vessel", "liquid") and 0 <= row[2] <= 1 for row in rows)
    assert np.asarray(Image.open(overlay)).shape[:2] == (128, 128)


def _semantic(app, model: str = "me/semantic-ft", precision: str = "fp32"):
    return app["client"].predict(handle_file(app["image"]), model, precision, api_name="/semantic")


def test_semantic_class_map_legend_and_precision(app):
    overlay, legend, info = _semantic(app)
    shares = {name: float(share) for name, share in re.findall(r'data-class="([^"]+)" data-share="([0-9.]+)"', legend)}
    assert list(shares) == ["background", "vessel", "liquid"] and sum(shares.values()) == pytest.approx(1, abs=1e-3)
    assert shares["background"] > 0 and shares["vessel"] > 0  # the test model's map is mixed (demo.testing)
    assert "inference" in info and "render" in info and info.endswith("fp32")
    image = np.asarray(Image.open(app["image"]).convert("RGB"))
    shown = np.asarray(Image.open(overlay).convert("RGB"))
    assert shown.shape == image.shape
    painted = (shown != image).any(-1).mean()  # every pixel of a class (not background) is painted, nothing else
    assert painted == pytest.approx(1 - shares["background"], abs=0.01)
    *_, info = _semantic(app, precision="bf16")
    assert info.endswith("bf16")
    with pytest.raises(AppError, match="fp16"):
        _semantic(app, precision="fp16")
    with pytest.raises(AppError, match="not a semantic model"):  # a SAM2 repo picked as a semantic model
        _semantic(app, model="me/sam2-ft")


def test_precision_switch(app):
    *_, info = _segment(app, {"points": [[40, 50, 1]]}, precision="bf16")
    assert info.endswith("bf16") and "embed cached" not in info  # bf16 has its own embedding
    with pytest.raises(AppError, match="fp16"):
        _segment(app, {"points": [[40, 50, 1]]}, precision="fp16")


def test_compare_fine_tuned_against_base(app):
    left, right, info = app["client"].predict(handle_file(app["image"]), json.dumps({"points": [[40, 50, 1]]}),
                                              BASE, "me/sam2-ft", "fp32", api_name="/compare")
    agreement = float(info.split("IoU agreement ")[1].split(" ")[0])
    assert 0.0 <= agreement <= 1.0
    assert np.asarray(Image.open(left)).shape == np.asarray(Image.open(right)).shape


def _png_claiming(path, width: int, height: int) -> str:
    """A tiny PNG whose header claims width x height (a decompression-bomb shape)."""
    raw = bytearray(open(path, "rb").read())
    ihdr = struct.pack(">II", width, height) + bytes(raw[24:29])
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(raw)


def test_bad_uploads_and_models_get_clear_errors_and_the_app_stays_up(app, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello, not a picture")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(open(app["image"], "rb").read()[:300])
    huge = tmp_path / "huge.png"
    huge.write_bytes(_png_claiming(app["image"], 100_000, 100_000))
    bomb = tmp_path / "bomb.png"  # under PIL's own limit, over the app's
    bomb.write_bytes(_png_claiming(app["image"], 9000, 9000))
    cases = [(not_image, "notes.png: not an image"), (truncated, "cut.png: corrupt or truncated"),
             (huge, "huge.png: image is too large"),
             (bomb, "bomb.png: 9000x9000 pixels is too large")]
    for path, message in cases:
        with pytest.raises(AppError, match=message):
            app["client"].predict(handle_file(str(path)), json.dumps({"points": [[1, 1, 1]]}), BASE, "fp32", False,
                                  api_name="/segment")
    with pytest.raises(AppError, match="nobody/missing"):
        _segment(app, {"points": [[1, 1, 1]]}, model="nobody/missing")
    with pytest.raises(AppError, match="outside the 128x128 image"):
        _segment(app, {"points": [[500, 1, 1]]})
    with pytest.raises(AppError, match="sam2"):  # a detectron2 repo picked as a SAM2 model
        _segment(app, {"points": [[1, 1, 1]]}, model="me/d2-ft")
    *_, info = _segment(app, {"points": [[40, 50, 1]]})
    assert info.startswith("score ")
