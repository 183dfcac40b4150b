"""Instance masks kept as box crops (trainer/data/instances.py): the same masks as the dense arrays they replace,
and memory that grows with the objects' pixels, not with objects x image pixels.

Crowded images are generated here: round cells on noise, written as a mask folder with a 16-bit label PNG (the
layout of microscopy data), as `bench/bench_data_scale.py many` writes them at 2048² with 400 cells.
"""

import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.augment import policy
from trainer.data import load_dataset
from trainer.data.instances import InstanceMasks, iou_matrix
from trainer.data.sample import Sample, SegmentationDataset
from trainer.engine.images import TrainingImages
from trainer.sam2_ft import evaluate as sam2_eval


def _cells(size: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image and its label map of `count` cells (radius 5-12 px; later cells cover earlier ones)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    label = np.zeros((size, size), np.uint16)
    yy, xx = np.mgrid[:size, :size]
    for k in range(count):
        r = int(rng.integers(5, 13))
        cy, cx = rng.integers(r, size - r, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        label[disc], image[disc] = k + 1, rng.integers(120, 255, 3)
    return image, label


def _dense(label: np.ndarray) -> np.ndarray:
    return np.stack([label == v for v in np.unique(label) if v])


def test_crops_round_trip_and_select_like_the_dense_array():
    _, label = _cells(96, 12)
    dense = _dense(label)
    masks = InstanceMasks.of(dense, 96, 96)
    assert masks.shape == dense.shape and np.array_equal(np.asarray(masks), dense)
    assert np.array_equal(masks.areas, dense.sum((1, 2)))
    assert np.array_equal(masks[3], dense[3]) and all(np.array_equal(a, b) for a, b in zip(masks, dense))
    pick = np.array([True, False] * 6)
    assert np.array_equal(np.asarray(masks[pick]), dense[pick])
    assert np.array_equal(np.asarray(masks[2:5]), dense[2:5])
    assert masks.nbytes < dense.nbytes / 10  # 12 small cells in a 96² image


def test_label_maps_split_into_the_masks_of_their_values():
    _, label = _cells(80, 10)
    values, masks = InstanceMasks.from_label_map(label)
    assert values == [int(v) for v in np.unique(label) if v]
    assert np.array_equal(np.asarray(masks), _dense(label))


@pytest.mark.parametrize("size", [(40, 50), (200, 130), (96, 96)])
def test_resized_crops_are_the_nearest_resize_of_the_full_masks(size):
    _, label = _cells(96, 8, seed=1)
    dense = _dense(label)
    ours = np.asarray(InstanceMasks.of(dense, 96, 96).resized(*size))
    # nearest: the input pixel under each output pixel's centre (PIL's rule; PIL's float maths differs at exact ties)
    rows, cols = ((2 * np.arange(n) + 1) * 96 // (2 * n) for n in size)
    assert np.array_equal(ours, dense[:, rows][:, :, cols])
    pil = np.stack([np.asarray(Image.fromarray(m).resize(size[::-1], Image.NEAREST)) for m in dense])
    assert (ours != pil).mean() < 0.01


def test_rle_iou_matches_the_dense_formula():
    _, a = _cells(64, 6, seed=2)
    _, b = _cells(64, 5, seed=3)
    da, db = _dense(a), _dense(b)
    inter = da.reshape(len(da), -1).astype(float) @ db.reshape(len(db), -1).T.astype(float)
    union = da.sum((1, 2))[:, None] + db.sum((1, 2))[None] - inter
    assert np.allclose(iou_matrix(InstanceMasks.of(da, 64, 64), db), inter / union)
    assert np.allclose(sam2_eval.paired_iou(InstanceMasks.of(da[:5], 64, 64), db), np.diag(inter / union))
    assert iou_matrix(da, []).shape == (6, 0)


def test_a_crowded_image_loads_and_trains_in_a_fraction_of_its_dense_masks(tmp_path):
    size, count = 1024, 300
    image, label = _cells(size, count)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(image).save(tmp_path / "images" / "cells.png")
    Image.fromarray(label).save(tmp_path / "masks" / "cells.png")
    dense_bytes = len(np.unique(label[label > 0])) * size * size  # the N x H x W bool array it used to be

    tracemalloc.start()
    sample = load_dataset(tmp_path)[0]  # the data check decodes it too
    _, load_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    images = TrainingImages(SegmentationDataset.from_samples([sample], ["object"]), 256, policy("default"), seed=0,
                            progress=False)
    images.item(0, step=0, seed=0, max_objects=8)  # imports the augmentations' modules, which tracemalloc counts
    tracemalloc.start()
    item = images.item(0, step=1, seed=0, max_objects=8)
    _, step_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    values = [v for v in np.unique(label) if v]
    assert len(sample.masks) == len(values) and np.array_equal(sample.masks[7], label == values[7])
    assert load_peak < dense_bytes / 10 and step_peak < dense_bytes / 10, (load_peak, step_peak, dense_bytes)
    assert 1 <= len(item.masks) <= 8 and item.masks.shape[-2:] == (256, 256)


def test_evaluation_in_object_chunks_scores_as_in_one(monkeypatch):
    from trainer.sam2_model.model import Sam2Spec, build_model

    image, label = _cells(128, 9, seed=4)
    data = SegmentationDataset.from_samples([Sample(image, _dense(label), np.zeros(9), "cells")], ["object"])
    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", 128))
    whole = sam2_eval.evaluate(model, data, points_per_side=0, progress=False)
    monkeypatch.setattr(sam2_eval, "PIXELS_PER_CHUNK", 128 * 128 * 2)  # two objects per predictor call
    chunked = sam2_eval.evaluate(model, data, points_per_side=0, progress=False)
    for key in ("miou_1pt", "miou_3pt", "miou_box", "area_corr_1pt", "area_corr_3pt", "area_corr_box"):
        assert chunked[key] == pytest.approx(whole[key], abs=1e-6), key
    assert chunked["num_objects"] == whole["num_objects"] == 9
    monkeypatch.setattr(sam2_eval, "MAX_SIDE", 64)  # a big image is scored at MAX_SIDE: about the same figures
    smaller = sam2_eval.evaluate(model, data, points_per_side=0, progress=False)
    assert smaller["num_objects"] == 9 and smaller["miou_box"] == pytest.approx(whole["miou_box"], abs=0.05)
