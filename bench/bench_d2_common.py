"""Shared setup for the detectron2 benchmarks: synthetic data registered once, one training cfg."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Callable

import torch

from trainer.d2_ft.config import D2TrainConfig
from trainer.d2_ft.pipeline import TRAIN_NAME, VAL_NAME, Plan, prepare, train_cfg
from trainer.d2_ft.register import register
from trainer.data.synthetic import make_dataset


def parse(description: str, iters: int = 6) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--iters", type=int, default=iters, help="iterations per timed run")
    parser.add_argument("--repeats", type=int, default=4, help="timed runs per variant (alternated)")
    parser.add_argument("--size", type=int, default=160, help="image size (shortest edge)")
    parser.add_argument("--depth", type=int, default=18, help="ResNet depth (random init, GroupNorm)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = steadier on a shared machine)")
    return parser.parse_args()


def setup(args: argparse.Namespace, **overrides) -> Plan:
    """A prepared plan (images cached in a temp run folder) with both datasets registered."""
    torch.set_num_threads(args.threads)
    config = D2TrainConfig(out=tempfile.mkdtemp(prefix="bench_d2_"), no_pretrained=True, depth=args.depth,
                           min_size=args.size, max_size=args.size, steps=args.iters, loader_workers=0,
                           progress=False, device=args.device, precision="fp32", **overrides).validate()
    plan = prepare(config, make_dataset(n_images=8, size=args.size, seed=1))
    register(TRAIN_NAME, plan.train_dicts, plan.spec.class_names)
    register(VAL_NAME, plan.val_dicts, plan.spec.class_names)
    return plan


def bench_cfg(plan: Plan):
    cfg = train_cfg(plan)
    cfg.DATASETS.TEST = ()  # training speed only: no evaluation in either trainer
    return cfg


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_variants(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median seconds per variant (each returns the seconds of its timed part, setup excluded). Runs alternate
    A B, B A, A B ... so machine noise and run-order effects (GC of the previous trainer) hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for i in range(repeats):
        for name in order if i % 2 == 0 else order[::-1]:
            times[name].append(variants[name]())
    return {name: statistics.median(ts) for name, ts in times.items()}
