"""`python -m trainer sam2 ...`: fine-tune SAM2 (flags generated from config.Sam2TrainConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer
from trainer.engine import summary
from trainer.engine.summary import change


def register(subparsers) -> None:
    register_trainer(subparsers, TrainerCommand(
        name="sam2", help="fine-tune SAM2 (sam2.1 hiera) with prompts sampled from your masks",
        description="Fine-tune SAM2 on a segmentation dataset. Multi-process: torchrun --nproc_per_node N -m trainer "
                    "sam2 ...  Resume: --out RUN_DIR --resume [--steps MORE].",
        config="trainer.sam2_ft.config:Sam2TrainConfig", run="trainer.sam2_ft.pipeline:run", report=report))


def report(result, cfg) -> None:
    after = result.summary["metrics"]["after"]
    summary.report(result, "sam2", [
        "mIoU (box / 1 point / 3 points): " + " / ".join(change(result.summary, k)
                                                         for k in ("miou_box", "miou_1pt", "miou_3pt")),
        "clicks placed on the largest error (mIoU after 1 / 3 / 5 clicks; clicks to 85 % IoU): " + " / ".join(
            change(result.summary, k) for k in ("miou_click_1", "miou_click_3", "miou_click_5"))
        + f"; {change(result.summary, 'noc_85', 1)}",
        f"no prompts (mean best IoU): {change(result.summary, 'auto_mean_best_iou')}",
        "predicted vs true area, correlation of logs (box / 1 point / 3 points): " + " / ".join(
            change(result.summary, k, 2) for k in ("area_corr_box", "area_corr_1pt", "area_corr_3pt")),
    ] if after else [])
