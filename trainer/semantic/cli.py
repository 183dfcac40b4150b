"""`python -m trainer semantic ...`: promptless semantic segmentation on SAM2's image encoder (flags generated from
config.SemanticTrainConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer


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
    before, after = s["metrics"]["before"], s["metrics"]["after"]
    baseline = (s.get("baseline") or {}).get("metrics") or {}
    print(f"\nrun {result.status}: {result.path}")
    if after:
        print(f"  mIoU {before.get('miou', 0):.3f} -> {after['miou']:.3f}, pixel accuracy "
              f"{before.get('pixel_accuracy', 0):.3f} -> {after['pixel_accuracy']:.3f}")
        print("  per class IoU: " + ", ".join(f"{k[4:]} {v:.3f}" for k, v in after.items() if k.startswith("iou_")))
    if baseline:
        print(f"  promptless SAM2 baseline (automatic masks + best-matching class): mIoU {baseline['miou']:.3f}, "
              f"pixel accuracy {baseline['pixel_accuracy']:.3f}")
    print(f"  {s['images_per_s']:.2f} images/s over {s['train_time_s']:.0f} s")
    print(f"  look at: {result.path / 'summary.json'}, {result.path / 'curves.png'}, {result.path / 'overlays'}/")
    if result.status == "paused":
        print(f"  continue with: python -m trainer semantic --out {result.path} --resume")
