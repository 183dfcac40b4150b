"""A whole `python -m trainer semantic` run: encoder, data, baseline and evaluation before, training, evaluation
after, run folder. Works alone or under torchrun (rank 0 evaluates and writes the run folder), like the SAM2 run.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from trainer.data import load_dataset
from trainer.data.sample import SegmentationDataset
from trainer.engine.session import RunResult, evaluation, open_run, start_or_resume, train_session
from trainer.engine.summary import Summary, picked
from trainer.precision import resolve
from trainer.runlog import RunDir
from trainer.sam2_model.model import save_spec
from trainer.semantic.batches import LabelledImages
from trainer.semantic.config import SemanticTrainConfig
from trainer.semantic.evaluate import METRICS, automatic_baseline, evaluate
from trainer.semantic.labels import semantic_classes
from trainer.semantic.loop import SemanticTrainer
from trainer.semantic.model import SemanticSegmenter, SemanticSpec, build_sam2, from_sam2, load_into
from trainer.semantic.overlays import draw_overlays

BASELINE = "sam2 automatic mask generator, each mask given the class of its best-matching ground-truth instance"


def run(cfg: SemanticTrainConfig, dataset: SegmentationDataset | None = None) -> RunResult:
    """Train per `cfg`; `dataset` (already loaded) replaces reading cfg.data."""
    world, device, precision, run_dir = open_run(cfg)

    torch.manual_seed(cfg.seed)  # random init is reproducible
    # the whole SAM2 (its encoder is ours; the rest makes the baseline); bad weights fail before the data is read
    sam2 = build_sam2(cfg.size, cfg.image_size, None if cfg.resume else cfg.base_weights, device)
    if dataset is None:
        dataset = load_dataset(cfg.data, cfg.format, skip_bad=cfg.skip_bad)
    spec = SemanticSpec(semantic_classes(dataset.class_names), cfg.size, cfg.image_size, cfg.channels)
    model = from_sam2(sam2, spec)
    if cfg.resume:
        load_into(model, run_dir.weights_path)
    train_set, val_set = dataset.split(cfg.val_fraction, cfg.seed)
    if world.main:
        run_dir.write_config(cfg.to_dict())
        save_spec(spec, run_dir.path)
    data = LabelledImages.for_run(train_set, cfg, len(spec.class_names), cfg.progress and world.main)
    trainer = SemanticTrainer(cfg, model, data, precision, world)
    segmenter = SemanticSegmenter(model, spec)

    eval_now = evaluation(run_dir, world, lambda: evaluate(segmenter, val_set, cfg.eval_images, cfg.progress),
                          enabled=cfg.eval)
    logged = {r.get("phase"): r for r in start_or_resume(trainer, run_dir)}
    if cfg.resume:
        before, baseline = logged.get("before", {}), logged.get("baseline", {}).get("baseline", {})
    else:
        before, baseline = eval_now(0, "before"), {}
        if cfg.eval and cfg.baseline and cfg.auto_points_per_side > 0 and world.main:  # the base SAM2 (0: skipped)
            baseline = automatic_baseline(sam2, val_set, spec.class_names, cfg.eval_images, cfg.auto_points_per_side,
                                          cfg.auto_thresholds, cfg.progress)
            run_dir.log({"step": 0, "phase": "baseline", "baseline": baseline})
    del sam2  # only its image encoder (inside `model`) is trained
    status, timing = train_session(trainer, run_dir, on_eval=eval_now)
    after = eval_now(trainer.step, "after") if status == "finished" else {}

    summary = {}
    if world.main:
        summary = write_artifacts(cfg, run_dir, segmenter, dataset, train_set, val_set, before, after, baseline,
                                  timing, status, device)
    if world.size > 1:
        dist.barrier()
    return RunResult(run_dir.path, status, summary)


def write_artifacts(cfg: SemanticTrainConfig, run_dir: RunDir, segmenter: SemanticSegmenter, dataset, train_set,
                    val_set, before: dict, after: dict, baseline: dict, timing: dict, status: str,
                    device: torch.device) -> dict:
    """curves.png, overlays/, summary.json (the schema the Hub model card reads)."""
    spec = segmenter.spec
    run_dir.plot_curves(keys=["loss", "lr", "grad_norm", "miou", "pixel_accuracy"])
    if status == "finished" and cfg.overlays > 0 and len(val_set):
        samples = [val_set[i] for i in range(min(cfg.overlays, len(val_set)))]
        draw_overlays(samples, [segmenter.predict(s.image) for s in samples], spec.class_names, spec.colors,
                      run_dir.overlays)
    return Summary(
        kind="semantic", base_model=str(cfg.base_weights or "random-init"),
        model={"size": cfg.size, "image_size": cfg.image_size, "decoder_channels": cfg.channels},
        dataset=dataset.describe(train_set, val_set, str(cfg.data), cfg.format),
        recipe={"freeze": cfg.frozen, "loss": f"{cfg.ce_weight:g} x cross-entropy + {cfg.dice_weight:g} x dice",
                "class_weights": cfg.class_weights, "precision": resolve(cfg.precision, device).name,
                "steps": cfg.steps, "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "lr": cfg.lr,
                "weight_decay": cfg.weight_decay, "augment": cfg.augment, "seed": cfg.seed},
        before=_pick(before), after=_pick(after), main_metric="miou", train_time_s=timing["train_time_s"],
        speed={"images_per_s": timing["images_per_s"]}, status=status,
        sections={"classes": [{"name": n, "color": c} for n, c in zip(spec.class_names, spec.colors)],
                  "baseline": {"method": BASELINE, "points_per_side": cfg.auto_points_per_side, **cfg.auto_thresholds,
                               "metrics": _pick(baseline)} if baseline else {}},
    ).write(run_dir)


def _pick(metrics: dict) -> dict:
    return picked(metrics, METRICS, prefixes=("iou_",))
