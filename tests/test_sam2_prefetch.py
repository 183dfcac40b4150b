"""Micro-batches built ahead by DataLoader workers (batches.Ahead) are the ones the training process would build:
same images, masks and prompt generators, in order, on resume and after a jump."""

import numpy as np
import torch

from trainer.augment import policy
from trainer.data.synthetic import make_dataset
from trainer.sam2_ft.batches import Ahead, TrainingImages, make_items, step_indices


def _build(images: TrainingImages):
    def build(step: int, micro: int) -> list:
        return make_items(images, step_indices(len(images), 2, step, micro, 2, seed=0), step, 0, max_objects=3)
    return build


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.index, x.view) == (y.index, y.view) and np.array_equal(x.image, y.image)
        assert torch.equal(x.masks, y.masks)
        assert torch.equal(torch.rand(4, generator=x.generator), torch.rand(4, generator=y.generator))


def test_workers_build_the_micro_batches_this_process_would():
    images = TrainingImages(make_dataset(4, 64, seed=1), 64, policy("default"), seed=0, views=2, progress=False)
    here, ahead = Ahead(_build(images), 2, steps=4), Ahead(_build(images), 2, steps=4, workers=1)
    try:
        asked = [(0, 0), (0, 1), (1, 0), (1, 1), (3, 0), (3, 1), (2, 0)]  # in order, then a jump, then back
        for step, micro in asked:
            _same(ahead.get(step, micro), here.get(step, micro))
    finally:
        ahead.close()
