"""`python -m trainer sam2 ...`: fine-tune SAM2 (flags generated from config.Sam2TrainConfig)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    from trainer.sam2_ft.config import add_arguments

    parser = subparsers.add_parser(
        "sam2", help="fine-tune SAM2 (sam2.1 hiera) with prompts sampled from your masks",
        description="Fine-tune SAM2 on a segmentation dataset. Multi-process: torchrun --nproc_per_node N -m trainer "
                    "sam2 ...  Resume: --out RUN_DIR --resume [--steps MORE].")
    add_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from trainer.checkpoint import CheckpointError
    from trainer.precision import PrecisionError
    from trainer.sam2_ft.config import from_args

    try:
        cfg = from_args(args, _saved_config(args) if args.resume else None).validate()
        from trainer.sam2_ft.pipeline import run

        result = run(cfg)
    except (CheckpointError, PrecisionError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.summary:  # rank 0
        _report(result, cfg)
    if result.status == "stopped":
        return 1
    if result.status == "finished" and cfg.push_to and result.summary:
        try:
            from hub_cards.repo import push_run  # lazy: only runs that push need the Hub code
        except ImportError as err:
            print(f"error: the run is saved in {result.path} but cannot be pushed: {err}", file=sys.stderr)
            return 2
        print(f"pushed: {push_run(result.path, cfg.push_to)}")
    return 0


def _saved_config(args: argparse.Namespace):
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.runlog import RunDir

    if not args.out:
        raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
    path = Path(args.out) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; nothing to resume")
    saved = Sam2TrainConfig.from_dict(RunDir(args.out).read_config())
    saved.stop_after = 0  # a pause applies to the session that asked for it
    return saved


def _report(result, cfg) -> None:
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
    print(f"  {s['images_per_s']:.2f} images/s over {s['train_time_s']:.0f} s")
    print(f"  look at: {result.path / 'summary.json'}, {result.path / 'curves.png'}, {result.path / 'overlays'}/")
    if result.status == "paused":
        print(f"  continue with: python -m trainer sam2 --out {result.path} --resume")
