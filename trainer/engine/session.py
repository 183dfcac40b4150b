"""A run's session, the same for every trainer: check the config, join the process group, open the run folder,
resume or start, train this session's steps, evaluate before / during / after, and the result the CLI reports.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from trainer.engine.loop import Trainer, TrainingStopped, World, run_training
from trainer.engine.options import LoopOptions
from trainer.precision import Precision, default_device, resolve
from trainer.runlog import RunDir


@dataclass
class RunResult:
    path: Path
    status: str  # "finished" | "paused" (stop_after) | "stopped" (non-finite losses)
    summary: dict


def init_world(device: str | None) -> tuple[World, torch.device]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; gloo on CPU, nccl on GPUs."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = torch.device(device) if device else default_device()
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if size > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return World(rank=dist.get_rank() if size > 1 else 0, size=size), dev


def default_out(world: World, prefix: str) -> str:
    """runs/<prefix>-<timestamp>, the same on every rank."""
    name = [f"runs/{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"]
    if world.size > 1:
        dist.broadcast_object_list(name, src=0)
    return name[0]


def open_run(cfg: LoopOptions) -> tuple[World, torch.device, Precision, RunDir]:
    """What every run does first: check the config, join the process group, resolve the precision, and open the run
    folder (runs/<kind>-<timestamp> by default; with --resume it must hold a run to continue)."""
    cfg.validate()
    world, device = init_world(cfg.device)
    precision = resolve(cfg.precision, device)
    cfg.out = cfg.out or default_out(world, cfg.kind)
    run_dir = RunDir(cfg.out)
    if cfg.resume:
        run_dir.require_resumable()
    return world, device, precision, run_dir


def evaluation(run: RunDir, world: World, measure: Callable[[], dict], enabled: bool = True,
               keys: tuple[str, ...] | None = None) -> Callable[..., dict]:
    """on_eval(step, phase="eval"): rank 0 measures and logs {step, phase, metrics (only `keys` if given)}; the other
    ranks wait for it."""
    def eval_now(step: int, phase: str = "eval") -> dict:
        if not enabled:
            return {}
        metrics = measure() if world.main else {}
        if world.main:
            run.log({"step": step, "phase": phase, **{k: v for k, v in metrics.items() if keys is None or k in keys}})
        if world.size > 1:
            dist.barrier()
        return metrics
    return eval_now


def start_or_resume(trainer: Trainer, run: RunDir) -> list[dict]:
    """--resume: optimizer/RNG/step from RUN_DIR/state and metrics.jsonl cut back to that step; otherwise a fresh
    log. Returns what metrics.jsonl holds now (a resumed run reports its 'before' from there)."""
    if trainer.cfg.resume:
        trainer.load(run)
        if trainer.world.main:
            run.truncate_metrics(trainer.step)
    elif trainer.world.main and run.metrics_path.exists():
        run.metrics_path.unlink()  # a fresh run in an old folder starts a fresh log
    if trainer.world.size > 1:
        dist.barrier()
    return run.read_metrics()


def train_session(trainer: Trainer, run: RunDir, on_eval: Callable[..., dict] | None = None) -> tuple[str, dict]:
    """This session's steps (to --steps, or --stop-after more), then a checkpoint. Returns the status ("finished",
    "paused" by --stop-after, "stopped" by non-finite losses: last good checkpoint kept) and the timings."""
    cfg = trainer.cfg
    until = min(cfg.steps, trainer.step + cfg.stop_after) if cfg.stop_after else cfg.steps
    try:
        timing = run_training(trainer, run, until, on_eval=on_eval)
        trainer.save(run)
    except TrainingStopped as err:
        print(f"warning: {err}")
        return "stopped", {"train_time_s": 0.0, "images_per_s": 0.0}
    return ("paused" if trainer.step < cfg.steps else "finished"), timing
