"""A whole `python -m trainer sam2` run: data, model, evaluation before, training, evaluation after, run folder.

Works alone or under torchrun (one process per device; rank 0 evaluates and writes the run folder).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from trainer.data.sample import SegmentationDataset
from trainer.precision import Precision, default_device, resolve
from trainer.runlog import RunDir
from trainer.sam2_ft.batches import TrainingImages
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.evaluate import METRICS, auto_thresholds, evaluate
from trainer.sam2_ft.loop import Trainer, World, evaluation, start_or_resume, train_session
from trainer.sam2_ft.model import HUB_IDS, Sam2Spec, build_model, save_spec


@dataclass
class RunResult:
    path: Path
    status: str  # "finished" | "paused" (stop_after) | "stopped" (non-finite losses)
    summary: dict


def base_weights(cfg: Sam2TrainConfig) -> str | None:
    """What the run starts from: None (random init), a file/folder, or the official Hub id of --size."""
    if cfg.no_pretrained:
        return None
    return cfg.weights or HUB_IDS[cfg.size]


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


def default_out(world: World, prefix: str = "sam2") -> str:
    """runs/<prefix>-<timestamp>, the same on every rank."""
    name = [f"runs/{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"]
    if world.size > 1:
        dist.broadcast_object_list(name, src=0)
    return name[0]


def open_run(cfg, prefix: str = "sam2") -> tuple[World, torch.device, Precision, RunDir]:
    """What every SAM2-based run does first: check the config, join the process group, resolve the precision, and
    open the run folder (runs/<prefix>-<timestamp> by default; with --resume it must hold a run to continue)."""
    cfg.validate()
    world, device = init_world(cfg.device)
    precision = resolve(cfg.precision, device)
    cfg.out = cfg.out or default_out(world, prefix)
    run_dir = RunDir(cfg.out)
    if cfg.resume:
        run_dir.require_resumable()
    return world, device, precision, run_dir


def build(cfg: Sam2TrainConfig, weights: str | Path | None, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)  # random init is reproducible (the base model of the overlays is rebuilt)
    return build_model(Sam2Spec(cfg.size, cfg.image_size), weights, device=device, train=True)


def run(cfg: Sam2TrainConfig, dataset: SegmentationDataset | None = None) -> RunResult:
    """Train per `cfg`; `dataset` (already loaded) replaces reading cfg.data."""
    world, device, precision, run_dir = open_run(cfg)

    model = build(cfg, run_dir.weights_path if cfg.resume else base_weights(cfg), device)  # bad weights fail first
    if dataset is None:
        from trainer.data import load_dataset

        dataset = load_dataset(cfg.data, cfg.format, skip_bad=cfg.skip_bad)
    train_set, val_set = dataset.split(cfg.val_fraction, cfg.seed)
    if world.main:
        run_dir.write_config(cfg.to_dict())
        save_spec(Sam2Spec(cfg.size, cfg.image_size), run_dir.path)
    trainer = Trainer(cfg, model, TrainingImages.for_run(train_set, cfg, cfg.progress and world.main), precision, world)

    eval_now = evaluation(run_dir, world, enabled=cfg.eval, keys=METRICS, measure=lambda: evaluate(
        model, val_set, cfg.eval_images, cfg.auto_points_per_side, cfg.seed, cfg.progress, auto_thresholds(cfg),
        cfg.eval_clicks))
    logged = start_or_resume(trainer, run_dir)
    before = next((r for r in logged if r.get("phase") == "before"), {}) if cfg.resume else eval_now(0, "before")
    status, timing = train_session(trainer, run_dir, on_eval=eval_now)
    after = eval_now(trainer.step, "after") if status == "finished" else {}

    summary = {}
    if world.main:
        summary = write_artifacts(cfg, run_dir, dataset, train_set, val_set, before, after, timing, status, device)
    if world.size > 1:
        dist.barrier()
    return RunResult(run_dir.path, status, summary)


def write_artifacts(cfg, run_dir: RunDir, dataset, train_set, val_set, before: dict, after: dict, timing: dict,
                    status: str, device: torch.device) -> dict:
    """curves.png, overlays/, summary.json (the schema the Hub model card reads)."""
    from trainer.sam2_ft.overlays import draw_overlays, predict_for_overlays

    run_dir.plot_curves(keys=["loss", "lr", "miou_box", "miou_1pt", "auto_mean_best_iou"])
    if status == "finished" and cfg.overlays > 0 and len(val_set):
        samples = [val_set[i] for i in range(min(cfg.overlays, len(val_set)))]
        tuned = predict_for_overlays(build(cfg, run_dir.weights_path, device), samples, cfg.seed)
        base = predict_for_overlays(build(cfg, base_weights(cfg), device), samples, cfg.seed)
        draw_overlays(samples, base, tuned, run_dir.overlays)
    summary = {
        "kind": "sam2",
        "base_model": str(base_weights(cfg) or "random-init"),
        "model": {"size": cfg.size, "image_size": cfg.image_size},
        "dataset": dataset.describe(train_set, val_set, str(cfg.data), cfg.format),
        "recipe": {"loss": cfg.loss, "prompts": cfg.prompt_types, "correction_clicks": cfg.correction_clicks,
                   "augment": cfg.augment, "cache_views": cfg.cache_views if cfg.cache_features else 0,
                   "freeze": cfg.frozen, "precision": resolve(cfg.precision, device).name, "steps": cfg.steps,
                   "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "lr": cfg.lr,
                   "weight_decay": cfg.weight_decay, "seed": cfg.seed},
        "metrics": {"before": _pick(before), "after": _pick(after)},
        "per_class": {"before": before.get("per_class", {}), "after": after.get("per_class", {})},
        "main_metric": "miou_box",
        "train_time_s": round(timing["train_time_s"], 2),
        "images_per_s": round(timing["images_per_s"], 3),
        "status": status,
    }
    run_dir.write_summary(summary)
    return summary


def _pick(metrics: dict) -> dict:
    return {k: metrics[k] for k in METRICS if k in metrics}
