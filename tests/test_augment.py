"""Augmentation (trainer/augment.py): masks follow their pixels, crops keep partial objects and drop emptied ones,
and a seed gives the same augmented batch. Images are drawn here: flat-coloured squares on a dark background, so
which pixels belong to which object is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.augment import LEVELS, Policy, augment, policy, scale_crop
from trainer.data.sample import Sample, SegmentationDataset
from trainer.engine.images import TrainingImages, make_items, to_model_size

COLOURS = [(250, 40, 40), (40, 250, 40), (40, 40, 250)]


def squares(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Three coloured squares (object n has colour n) on a dark grey background."""
    image = np.full((size, size, 3), 20, np.uint8)
    masks = np.zeros((3, size, size), bool)
    for n, (y, x) in enumerate([(10, 10), (10, 55), (55, 30)]):
        masks[n, y:y + 30, x:x + 30] = True
        image[masks[n]] = COLOURS[n]
    return image, masks


def test_augmented_masks_cover_the_same_object_pixels_as_the_image():
    image, masks = squares()
    geometric = Policy(scale=(0.5, 2.0), flip=True, degrees=25, shear=20)  # no colour change: colours identify
    for seed in range(12):
        frames, out, kept = augment([image], [masks], geometric, seed)
        assert out[0].shape[1:] == frames[0].shape[:2]
        for mask, n in zip(out[0], kept):
            pixels = frames[0][mask].astype(int)
            own = np.abs(pixels - COLOURS[n]).sum(1) < 60
            assert own.mean() > 0.9, (seed, n, own.mean())  # the border pixels blend (bilinear image, nearest mask)
            strict = np.abs(frames[0].astype(int) - COLOURS[n]).sum(2) < 20
            assert mask[strict].mean() > 0.95, (seed, n)  # and the object's clear pixels are in its mask


def test_a_crop_keeps_cut_objects_as_partial_masks_and_drops_emptied_ones():
    image, masks = squares()
    import random

    random.seed(0)
    # zoom 2: a 48 x 48 window; find one that cuts object 0, holds none of object 2
    for _ in range(200):
        frames, cropped = scale_crop([image], [masks], (2.0, 2.0), (20, 20, 20))
        area = cropped[0].reshape(3, -1).sum(1)
        if 0 < area[0] < 900 and area[2] == 0:
            break
    else:
        pytest.fail("no window cut object 0 while missing object 2")
    assert frames[0].shape[:2] == (48, 48)
    from trainer.augment import keep_visible

    kept = keep_visible(cropped, masks.reshape(3, -1).sum(1))
    assert 0 in kept and 2 not in kept
    # through augment(): the kept indices say which input object each output mask is
    for seed in range(20):
        _, out, kept = augment([image], [masks], Policy(scale=(1.5, 3.0)), seed)
        assert len(out[0]) == len(kept) and len(set(kept.tolist())) == len(kept)
        for mask, n in zip(out[0], kept):
            assert mask.sum() >= 20


def test_a_zoom_out_pads_with_the_border_colour_and_shrinks_nothing_away():
    image, masks = squares()
    frames, out, kept = augment([image], [masks], Policy(scale=(0.5, 0.5)), seed=3)
    assert frames[0].shape[:2] == (192, 192) and kept.tolist() == [0, 1, 2]
    assert (frames[0][~out[0].any(0)] == 20).all()  # the canvas continues the background
    assert out[0].reshape(3, -1).sum(1).tolist() == [900, 900, 900]


def test_same_seed_same_augmented_batch_other_seed_another():
    image, masks = squares()
    dataset = SegmentationDataset.from_samples([Sample(image, masks, np.zeros(3), "squares.png")] * 2, ["square"])
    batches = []
    for seed in (0, 0, 1):
        images = TrainingImages(dataset, 64, policy("strong"), seed=seed, views=0, progress=False)
        batches.append(make_items(images, [0, 1], step=5, seed=seed, max_objects=3))
    same, other = zip(batches[0], batches[1]), zip(batches[0], batches[2])
    assert all(np.array_equal(a.image, b.image) and torch.equal(a.masks, b.masks) for a, b in same)
    assert not all(np.array_equal(a.image, b.image) for a, b in other)


def test_cached_views_are_fixed_per_sample_and_view():
    image, masks = squares()
    dataset = SegmentationDataset.from_samples([Sample(image, masks, np.zeros(3), "squares.png")], ["square"])
    images = TrainingImages(dataset, 64, policy("default"), seed=0, views=4, progress=False)
    items = [images.item(0, step, seed=0, max_objects=3) for step in range(40)]
    assert {it.view for it in items} == {0, 1, 2, 3}
    by_view = {}
    for it in items:  # a view's image is the same whichever step draws it: its cached features stay right
        by_view.setdefault(it.view, it.image)
        assert np.array_equal(by_view[it.view], it.image)
    assert TrainingImages(dataset, 64, policy("none"), seed=0, views=4, progress=False).views == 1


def test_levels_and_a_clear_error():
    assert set(LEVELS) == {"none", "flip", "default", "strong"} and policy("none").identity
    with pytest.raises(ValueError, match="--augment: unknown level 'heavy'"):
        policy("heavy")


def test_images_without_objects_and_draws_that_empty_every_object_are_fine():
    image, masks = squares()
    for pol in (policy("default"), Policy(scale=(4.0, 4.0))):
        frames, out, kept = augment([image], [np.zeros((0, 96, 96), bool)], pol, seed=1)
        assert out[0].shape == (0, *frames[0].shape[:2]) and len(kept) == 0
    emptied = [augment([image], [masks[2:]], Policy(scale=(4.0, 4.0)), seed)[2] for seed in range(30)]
    assert any(len(k) == 0 for k in emptied)  # a 24-px window missing the one square: nothing kept, no error


def test_a_step_whose_draw_empties_every_object_trains_on_the_plain_image(monkeypatch):
    """A 4x zoom often misses the one square: the item falls back to the plain image's object, decoded once."""
    image, masks = squares()
    dataset = SegmentationDataset.from_samples([Sample(image, masks[2:], np.zeros(1, np.int64), "one.png")], ["square"])
    reads = []
    read = SegmentationDataset.__getitem__
    monkeypatch.setattr(SegmentationDataset, "__getitem__", lambda self, i: reads.append(i) or read(self, i))
    images = TrainingImages(dataset, 64, Policy(scale=(4.0, 4.0)), seed=0, views=0, progress=False)
    _, plain = to_model_size(image, masks[2:], 64)
    fallbacks = 0
    for step in range(30):
        item = images.item(0, step, seed=0, max_objects=2)
        assert item.masks.shape[0] == 1 and item.masks.any()
        fallbacks += int(torch.equal(item.masks[0, 0], plain[0]))
    assert 0 < fallbacks < 30  # some draws emptied the square (plain image), the others kept a part of it
    assert len(reads) == 30  # one decode per item, fallback or not
