"""`python -m trainer semantic ...`: promptless semantic segmentation on SAM2's image encoder (flags generated from
config.SemanticTrainConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer
from trainer.engine import summary
from trainer.engine.summary import change


def register(subparsers) -> None:
    register_trainer(subparsers, TrainerCommand(
        name="semantic", help="train a UNet-style class-map head on SAM2's (frozen) image encoder; no prompts",
        description="Semantic segmentation without prompts: SAM2's image encoder (official sam2.1 weights, a SAM2 "
                    "model of ours, or --no-pretrained) under a UNet-style head, trained on class maps made from "
                    "your instance masks. Multi-process: torchrun --nproc_per_node N -m trainer semantic ...  "
                    "Resume: --out RUN_DIR --resume [--steps MORE].",
        config="trainer.semantic.config:SemanticTrainConfig", run="trainer.semantic.pipeline:run", report=report))


def report(result, cfg) -> None:
    s = result.summary
    after, baseline = s["metrics"]["after"], (s.get("baseline") or {}).get("metrics") or {}
    lines = [f"mIoU {change(s, 'miou')}, pixel accuracy {change(s, 'pixel_accuracy')}",
             "per class IoU: " + ", ".join(f"{k[4:]} {v:.3f}" for k, v in after.items() if k.startswith("iou_"))
             ] if after else []
    if baseline:
        lines.append(f"promptless SAM2 baseline (automatic masks + best-matching class): mIoU {baseline['miou']:.3f}, "
                     f"pixel accuracy {baseline['pixel_accuracy']:.3f}")
    summary.report(result, "semantic", lines)
