"""A whole `python -m trainer sam2-video` run: clips, SAM2Train, J&F before, training, J&F after, run folder.

Works alone or under torchrun (rank 0 evaluates and writes the run folder), like the SAM2 run; the loop, resume,
precision and NaN guard are the engine's (trainer/engine/loop.py).
"""

from __future__ import annotations

import tempfile

import torch
import torch.distributed as dist

from hub_cards.fetch import pull
from hub_cards.public import dataset_name
from trainer.data.clips import load_clips
from trainer.engine.session import RunResult, evaluation, open_run, start_or_resume, train_session
from trainer.engine.summary import Summary, picked
from trainer.precision import resolve
from trainer.runlog import RunDir
from trainer.sam2_model.model import save_spec
from trainer.video.batches import TrainingClips
from trainer.video.config import VideoTrainConfig
from trainer.video.evaluate import METRICS, REFERENCES, evaluate, quiet_bars, references, track_clip, write_frames
from trainer.video.loop import VideoTrainer
from trainer.video.model import VideoSpec, build_predictor, build_train_model, load_folder
from trainer.video.overlays import draw_strip

IMAGE_BASELINE = "a SAM2 image model used as a video predictor (its memory modules as it has them)"


def run(cfg: VideoTrainConfig, dataset=None) -> RunResult:
    """Train per `cfg`; `dataset` (clips, already loaded) replaces reading cfg.data."""
    world, device, precision, run_dir = open_run(cfg)

    model = build_train_model(cfg, run_dir.weights_path if cfg.resume else cfg.base_weights, device,
                              start=not cfg.resume)
    if dataset is None:
        dataset = load_clips(cfg.data, cfg.format, skip_bad=cfg.skip_bad)
    train_set, val_set = dataset.split(cfg.val_fraction, cfg.seed)
    spec = VideoSpec(cfg.size, cfg.image_size)
    if world.main:
        run_dir.write_config(cfg.to_dict())
        save_spec(spec, run_dir.path)
    trainer = VideoTrainer(cfg, model, TrainingClips.for_run(train_set, cfg), precision, world)

    def measure() -> dict:  # the trained weights in sam2's own video predictor
        state = {k: v.detach() for k, v in model.state_dict().items()}
        predictor = build_predictor(spec, None, device)
        predictor.load_state_dict(state)
        return evaluate(predictor, val_set, cfg.eval_clips, cfg.progress)

    eval_now = evaluation(run_dir, world, measure, enabled=cfg.eval and len(val_set) > 0, keys=METRICS)
    logged = {r.get("phase"): r for r in start_or_resume(trainer, run_dir)}
    before = logged.get("before", {}) if cfg.resume else eval_now(0, "before")
    baseline = logged.get("baseline", {}).get("baseline", {}) if cfg.resume else {}
    if cfg.compare_with and cfg.eval and world.main and not cfg.resume:
        baseline = image_baseline(cfg.compare_with, val_set, cfg, device)
        run_dir.log({"step": 0, "phase": "baseline", "baseline": {k: baseline[k] for k in METRICS}})
    status, timing = train_session(trainer, run_dir, on_eval=eval_now)
    after = eval_now(trainer.step, "after") if status == "finished" else {}

    summary = {}
    if world.main:
        summary = write_artifacts(cfg, run_dir, spec, dataset, train_set, val_set, before, after, baseline, timing,
                                  status, device)
    if world.size > 1:
        dist.barrier()
    return RunResult(run_dir.path, status, summary)


def image_baseline(ref: str, clips, cfg: VideoTrainConfig, device: torch.device) -> dict:
    """J&F of a SAM2 image model (run folder, local hub, Hub id) used as a video predictor on the same clips."""
    predictor, _ = load_folder(pull(ref), device)
    return evaluate(predictor, clips, cfg.eval_clips, cfg.progress)


def write_artifacts(cfg: VideoTrainConfig, run_dir: RunDir, spec: VideoSpec, dataset, train_set, val_set,
                    before: dict, after: dict, baseline: dict, timing: dict, status: str,
                    device: torch.device) -> dict:
    """curves.png, overlays/ (frame strips), summary.json (the schema the Hub model card reads)."""
    run_dir.plot_curves(keys=["loss", "lr", "grad_norm", "jf_mask", "jf_click"])
    refs = references(val_set, cfg.eval_clips) if after and len(val_set) else {}
    if status == "finished" and cfg.overlays > 0 and len(val_set):
        draw_overlays(cfg, spec, run_dir, val_set, device)
    return Summary(
        kind="sam2-video", base_model=str(cfg.base_weights or "random-init"),
        model={"size": cfg.size, "image_size": cfg.image_size},
        dataset=dataset.describe(train_set, val_set, str(cfg.data), cfg.format),
        recipe={"trained": cfg.trained, "memory_start": cfg.memory_start, "frames": cfg.frames,
                "max_objects": cfg.max_objects,
                "prompts": f"first frame: mask {1 - cfg.point_prob:g}, box {cfg.point_prob * cfg.box_prob:g}, "
                           f"click {cfg.point_prob * (1 - cfg.box_prob):g}",
                "correct_frames": cfg.correct_frames, "correction_points": cfg.correction_points,
                "loss": f"sam2 MultiStepMultiMasksAndIous {cfg.loss_weights}", "augment": cfg.augment,
                "cache_views": cfg.cache_views if cfg.cache_features else 0,
                "precision": resolve(cfg.precision, device).name, "steps": cfg.steps,
                "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "lr": cfg.lr,
                "weight_decay": cfg.weight_decay, "seed": cfg.seed},
        before=picked(before, METRICS), after=picked(after, METRICS), main_metric="jf_mask",
        train_time_s=timing["train_time_s"], status=status,
        speed={"clips_per_s": timing["images_per_s"], "images_per_s": timing["images_per_s"] * cfg.frames},
        sections={"per_object": {"before": before.get("per_object", {}), "after": after.get("per_object", {})},
                  "references": {"methods": REFERENCES, "metrics": refs} if refs else {},
                  "baseline": {"method": IMAGE_BASELINE, "model": dataset_name(cfg.compare_with),
                               "metrics": picked(baseline, METRICS)} if baseline else {}},
    ).write(run_dir)


def draw_overlays(cfg: VideoTrainConfig, spec: VideoSpec, run_dir: RunDir, val_set, device: torch.device) -> None:

    models = [("base", build_predictor(spec, cfg.base_weights, device, cfg.seed)),
              ("fine-tuned", build_predictor(spec, run_dir.weights_path, device))]
    for i in range(min(cfg.overlays, len(val_set))):
        clip = val_set[i]
        rows = []
        with tempfile.TemporaryDirectory(prefix="segkit-clip-") as tmp, quiet_bars(), torch.inference_mode():
            folder = str(write_frames(clip.frames, tmp))
            for title, predictor in models:
                rows.append((title, track_clip(predictor, clip, "mask", predictor.init_state(folder))))
        draw_strip(clip, rows, run_dir.overlays / f"val_{i:02d}.png")
