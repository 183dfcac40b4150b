"""Semantic trainer speed, as ratios against a baseline measured in the same run (random-init sam2.1 tiny, CPU).

    PYTHONPATH=. python bench/bench_semantic.py [--image-size 256] [--images 8] [--batch 4]

Baseline: the frozen encoder recomputed every step (head-only training, --no-feature-cache). Candidates, rounds
alternating with it: the default (frozen encoder + feature cache, after the cache's first epoch) and training
everything (--freeze none). Printed: both against the baseline, and head-only (cached) against full training.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Callable

import numpy as np
import torch

from bench_sam2_speed import timed
from trainer.data.synthetic import make_dataset
from trainer.precision import resolve
from trainer.semantic.batches import LabelledImages
from trainer.semantic.config import SemanticTrainConfig
from trainer.semantic.labels import semantic_classes
from trainer.semantic.loop import SemanticTrainer
from trainer.semantic.model import SemanticSpec, build_model

warnings.filterwarnings("ignore")


def trainer_step(dataset, size: int, batch: int, **overrides) -> tuple[Callable[[], int], SemanticTrainer]:
    """A SemanticTrainer as a callable doing one optimizer step (-> images processed)."""
    classes = semantic_classes(dataset.class_names)
    cfg = SemanticTrainConfig(image_size=size, no_pretrained=True, batch_size=batch, progress=False, **overrides)
    torch.manual_seed(0)
    model = build_model(SemanticSpec(classes, "tiny", size))
    trainer = SemanticTrainer(cfg, model, LabelledImages.for_run(dataset, cfg, len(classes), progress=False),
                              resolve("fp32", "cpu"))

    def step() -> int:
        trainer.train_step()
        return batch

    return step, trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dataset = make_dataset(args.images, args.image_size, seed=0)
    print(f"machine: {torch.get_num_threads()} torch threads, CPU; sam2.1 tiny random init, {args.image_size}px, "
          f"{args.images} synthetic images, batch {args.batch}")
    start = time.perf_counter()
    kw = dict(dataset=dataset, size=args.image_size, batch=args.batch, augment="none")
    cached, trainer = trainer_step(**kw)
    recompute, _ = trainer_step(**kw, feature_cache=False)
    full, _ = trainer_step(**kw, freeze="none", lr=1e-5)
    for _ in range(-(-args.images // args.batch)):  # the cache's first epoch: steady state is every epoch after
        cached()
    print(f"  cache filled: {len(trainer.objective.cache)} entries")
    for fn in (recompute, full):
        fn()  # warm-up
    seconds: dict[str, list[float]] = {"recompute": [], "cache": [], "full": []}
    for _ in range(args.rounds):  # alternate (the machine is shared: load drifts)
        for name, fn in (("recompute", recompute), ("cache", cached), ("full", full)):
            seconds[name].append(timed(fn, args.batch))
    per_image = {name: np.array(s) for name, s in seconds.items()}
    for name, s in per_image.items():
        print(f"  {name:9s}: {1 / np.median(s):.2f} images/s (rounds: {', '.join(f'{1 / x:.2f}' for x in s)})")
    ratio = lambda a, b: np.median(per_image[b] / per_image[a])  # noqa: E731 - a's speed over b's, round by round
    print(f"  frozen + feature cache vs recomputing the frozen encoder: {ratio('cache', 'recompute'):.2f}x images/s")
    print(f"  head only (frozen + cache) vs training everything:       {ratio('cache', 'full'):.2f}x images/s")
    print(f"  head only (recomputing) vs training everything:          {ratio('recompute', 'full'):.2f}x images/s")
    print(f"bench time {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
