"""`python -m trainer sam2 ...`: fine-tune SAM2 (flags generated from config.Sam2TrainConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer



def register(subparsers) -> None:
    register_trainer(subparsers, TrainerCommand(
        name="sam2", help="fine-tune SAM2 (sam2.1 hiera) with prompts sampled from your masks",
        description="Fine-tune SAM2 on a segmentation dataset. Multi-process: torchrun --nproc_per_node N -m trainer "
                    "sam2 ...  Resume: --out RUN_DIR --resume [--steps MORE].",
        config="trainer.sam2_ft.config:Sam2TrainConfig", run="trainer.sam2_ft.pipeline:run", report=report))


def report(result, cfg) -> None:
    s = result.summary
    before, after = s["metrics"]["before"], s["metrics"]["after"]
    print(f"\nrun {result.status}: {result.path}")
    if after:
        print("  mIoU (box / 1 point / 3 points): "
              f"{before.get('miou_box', 0):.3f} -> {after['miou_box']:.3f} / "
              f"{before.get('miou_1pt', 0):.3f} -> {after['miou_1pt']:.3f} / "
              f"{before.get('miou_3pt', 0):.3f} -> {after['miou_3pt']:.3f}")
        print(f"  no prompts (mean best IoU): {before.get('auto_mean_best_iou', 0):.3f} -> "
              f"{after['auto_mean_best_iou']:.3f}")
        print("  predicted vs true area, correlation of logs (box / 1 point / 3 points): " + " / ".join(
            f"{before.get(k, 0):.2f} -> {after.get(k, 0):.2f}" for k in ("area_corr_box", "area_corr_1pt",
                                                                          "area_corr_3pt")))
    print(f"  {s['images_per_s']:.2f} images/s over {s['train_time_s']:.0f} s")
    print(f"  look at: {result.path / 'summary.json'}, {result.path / 'curves.png'}, {result.path / 'overlays'}/")
    if result.status == "paused":
        print(f"  continue with: python -m trainer sam2 --out {result.path} --resume")
