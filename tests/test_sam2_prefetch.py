"""Micro-batches built ahead by DataLoader workers (batches.Ahead) are the ones the training process would build:
same images, masks and prompt generators, in order, on resume and after a jump."""

import numpy as np
import torch

from trainer.augment import policy
from trainer.data.synthetic import make_dataset
from trainer.engine.images import TrainingImages, make_items
from trainer.engine.sampling import Ahead, step_indices


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


def test_a_run_with_a_loader_worker_takes_the_same_steps():
    from trainer.precision import resolve
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.trainer import Sam2Trainer
    from trainer.sam2_model.model import Sam2Spec, build_model

    data = make_dataset(3, 64, seed=2)
    losses = {}
    for workers in (0, 1):
        cfg = Sam2TrainConfig(image_size=64, no_pretrained=True, batch_size=2, steps=3, lr=1e-3, warmup_steps=0,
                              progress=False, eval=False, correction_clicks=1, workers=workers)
        torch.manual_seed(0)
        trainer = Sam2Trainer(cfg, build_model(Sam2Spec("tiny", 64), train=True),
                          TrainingImages.for_run(data, cfg, progress=False), resolve("fp32", "cpu"))
        losses[workers] = [trainer.train_step()["loss"] for _ in range(3)]
        trainer.ahead.close()
    assert losses[0] == losses[1]
