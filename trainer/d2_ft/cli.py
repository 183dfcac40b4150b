"""`python -m trainer detectron2 ...`: fine-tune a detectron2 Mask R-CNN (flags from config.D2TrainConfig)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    from trainer.d2_ft.config import add_arguments

    parser = subparsers.add_parser(
        "detectron2", help="fine-tune a detectron2 Mask R-CNN (model zoo) on your instance masks",
        description="Fine-tune a detectron2 model-zoo Mask R-CNN. Multi-process: --num-workers N (GPUs, or gloo "
                    "processes on CPU). Resume: --out RUN_DIR --resume [--steps MORE]. Any detectron2 cfg key: "
                    "--opts MODEL.RPN.NMS_THRESH 0.6 ...")
    add_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from trainer.checkpoint import CheckpointError
    from trainer.d2_ft.config import from_args
    from trainer.precision import PrecisionError

    try:
        config = from_args(args, _saved_config(args) if args.resume else None).validate()
        from trainer.d2_ft.pipeline import run

        result = run(config)
    except (CheckpointError, PrecisionError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not result.summary:  # another machine's rank 0 writes the folder
        return 0
    metrics = result.summary["metrics"]
    print(f"run folder: {result.path}")
    for when in ("before", "after"):
        m = metrics.get(when) or {}
        print(f"  {when:6s} segm AP {m.get('segm_AP', float('nan')):.2f}  bbox AP {m.get('bbox_AP', float('nan')):.2f}")
    if config.push_to:
        from hub_cards.repo import push_run  # lazy: only runs that push need the Hub code

        print(f"pushed: {push_run(result.path, config.push_to)}")
    return 0


def _saved_config(args: argparse.Namespace):
    from trainer.d2_ft.config import D2TrainConfig
    from trainer.runlog import RunDir

    if not args.out:
        raise ValueError("--resume needs --out RUN_DIR")
    run = RunDir(args.out)
    if not run.config_path.is_file():
        raise ValueError(f"{run.config_path}: no run to resume")
    data = run.read_config() or {}
    if data.get("kind") != "detectron2":
        raise ValueError(f"{run.config_path}: a {data.get('kind')!r} run, not a detectron2 run")
    return D2TrainConfig.from_dict(data)
