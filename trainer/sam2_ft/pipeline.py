"""A whole `python -m trainer sam2` run: data, model, evaluation before, training, evaluation after, run folder.

Works alone or under torchrun (one process per device; rank 0 evaluates and writes the run folder).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from trainer.data import load_dataset
from trainer.data.sample import SegmentationDataset
from trainer.engine.images import TrainingImages
from trainer.engine.session import RunResult, evaluation, open_run, start_or_resume, train_session
from trainer.engine.summary import Summary, picked
from trainer.precision import resolve
from trainer.runlog import RunDir
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.evaluate import METRICS, evaluate
from trainer.sam2_ft.overlays import draw_overlays, predict_for_overlays
from trainer.sam2_ft.trainer import Sam2Trainer
from trainer.sam2_model.model import Sam2Spec, build_model, save_spec


def build(cfg: Sam2TrainConfig, weights: str | Path | None, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)  # random init is reproducible (the base model of the overlays is rebuilt)
    return build_model(Sam2Spec(cfg.size, cfg.image_size), weights, device=device, train=True)


def run(cfg: Sam2TrainConfig, dataset: SegmentationDataset | None = None) -> RunResult:
    """Train per `cfg`; `dataset` (already loaded) replaces reading cfg.data."""
    world, device, precision, run_dir = open_run(cfg)

    model = build(cfg, run_dir.weights_path if cfg.resume else cfg.base_weights, device)  # bad weights fail first
    if dataset is None:
        dataset = load_dataset(cfg.data, cfg.format, skip_bad=cfg.skip_bad)
    train_set, val_set = dataset.split(cfg.val_fraction, cfg.seed)
    if world.main:
        run_dir.write_config(cfg.to_dict())
        save_spec(Sam2Spec(cfg.size, cfg.image_size), run_dir.path)
    data = TrainingImages.for_run(train_set, cfg, cfg.progress and world.main)
    trainer = Sam2Trainer(cfg, model, data, precision, world)

    eval_now = evaluation(run_dir, world, enabled=cfg.eval, keys=METRICS, measure=lambda: evaluate(
        model, val_set, cfg.eval_images, cfg.auto_points_per_side, cfg.seed, cfg.progress, cfg.auto_thresholds,
        cfg.eval_clicks))
    logged = start_or_resume(trainer, run_dir)
    before = next((r for r in logged if r.get("phase") == "before"), {}) if cfg.resume else eval_now(0, "before")
    status, timing = train_session(trainer, run_dir, on_eval=eval_now)
    after = eval_now(trainer.step, "after") if status == "finished" else {}

    summary = {}
    if world.main:
        summary = write_artifacts(cfg, run_dir, dataset, train_set, val_set, before, after, timing, status, device,
                                  data.views)
    if world.size > 1:
        dist.barrier()
    return RunResult(run_dir.path, status, summary)


def write_artifacts(cfg, run_dir: RunDir, dataset, train_set, val_set, before: dict, after: dict, timing: dict,
                    status: str, device: torch.device, views: int) -> dict:
    """curves.png, overlays/, summary.json (the schema the Hub model card reads)."""
    run_dir.plot_curves(keys=["loss", "lr", "miou_box", "miou_1pt", "auto_mean_best_iou"])
    if status == "finished" and cfg.overlays > 0 and len(val_set):
        samples = [val_set[i] for i in range(min(cfg.overlays, len(val_set)))]
        tuned = predict_for_overlays(build(cfg, run_dir.weights_path, device), samples, cfg.seed)
        base = predict_for_overlays(build(cfg, cfg.base_weights, device), samples, cfg.seed)
        draw_overlays(samples, base, tuned, run_dir.overlays)
    return Summary(
        kind="sam2", base_model=str(cfg.base_weights or "random-init"),
        model={"size": cfg.size, "image_size": cfg.image_size},
        dataset=dataset.describe(train_set, val_set, str(cfg.data), cfg.format),
        recipe={"loss": cfg.loss, "prompts": cfg.prompt_types, "correction_clicks": cfg.correction_clicks,
                "centre_clicks": cfg.centre_clicks,
                "augment": cfg.augment, "cache_views": views,
                "freeze": cfg.frozen, "precision": resolve(cfg.precision, device).name, "steps": cfg.steps,
                "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "lr": cfg.lr,
                "weight_decay": cfg.weight_decay, "seed": cfg.seed},
        before=picked(before, METRICS), after=picked(after, METRICS), main_metric="miou_box",
        train_time_s=timing["train_time_s"], speed={"images_per_s": timing["images_per_s"]}, status=status,
        sections={"per_class": {"before": before.get("per_class", {}), "after": after.get("per_class", {})}},
    ).write(run_dir)
