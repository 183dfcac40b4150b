"""`python -m trainer evaluate MODEL --data PATH`: score any segkit model on any dataset, held-out data above all.

MODEL is a run folder, a local-hub name, a Hub id or a folder (hub_cards.pull resolves it); the model's kind
(model_config.yaml) picks the metrics, through the evaluator its row in hub_cards.kinds names. The JSON holds the
same keys as a run's summary.json ("kind", "metrics", "per_class", "main_metric", "dataset").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SPLITS = ("all", "val", "train")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate a model (run folder, local hub, Hub id) on a dataset and print its metrics",
        description="Evaluate MODEL on --data with its kind's metrics (SAM2: prompted mIoU by prompt type + "
                    "automatic masks; Detectron2: COCO AP; semantic: IoU per class; "
                    "SAM2 video: J&F on clips). --split val evaluates the "
                    "held-out split a training run with the same --val-fraction/--seed left out.")
    parser.add_argument("model", metavar="MODEL", help="run folder, local hub name (owner/name), Hub id or folder")
    parser.add_argument("--data", default="builtin", help="dataset path, or 'builtin' (default: builtin)")
    parser.add_argument("--format", default="auto", help="dataset format (auto-detected by default)")
    parser.add_argument("--split", default="all", choices=SPLITS,
                        help="all images (default), or the val/train part of the seeded split training uses")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="for --split: held-out fraction (default: the model's training config, else 0.2)")
    parser.add_argument("--seed", type=int, default=None, help="for --split: split seed (default: as trained, else 0)")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable samples instead of stopping")
    parser.add_argument("--revision", default=None, help="Hub / local-hub branch")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from hub_cards.kinds import HubError
    from trainer.checkpoint import CheckpointError

    try:
        results = evaluate(args.model, args.data, args.format, args.split, args.val_fraction, args.seed,
                           args.skip_bad, args.revision, args.device)
    except (HubError, CheckpointError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


def evaluate(model: str, data: str, format: str = "auto", split: str = "all", val_fraction: float | None = None,
             seed: int | None = None, skip_bad: bool = False, revision: str | None = None,
             device: str | None = None) -> dict[str, Any]:
    """The results dict (summary.json keys). Bad data raises DataError before any model is loaded."""
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    import yaml

    from hub_cards.fetch import pull
    from hub_cards.kinds import folder_kind
    from hub_cards.public import dataset_name
    from trainer.data.clips import detect_clip_format, load_clips
    from trainer.data.load import load_dataset
    from trainer.precision import default_device

    clips = data == "builtin-clips" or detect_clip_format(data) is not None
    # refused exactly as the trainers refuse it, before the model is looked at
    dataset = (load_clips if clips else load_dataset)(data, format, skip_bad=skip_bad)
    folder = pull(model, revision=revision)
    kind = folder_kind(folder)
    if kind.clips != clips:  # "builtin" means the built-in clips for a video model
        if data != "builtin":
            raise ValueError(f"{data}: a {kind.name} model is evaluated on {'clips' if kind.clips else 'images'}")
        dataset = kind.load_data(data, format, skip_bad)
    if split != "all":
        trained = yaml.safe_load((folder / "config.yaml").read_text()) if (folder / "config.yaml").is_file() else {}
        fraction = val_fraction if val_fraction is not None else float((trained or {}).get("val_fraction", 0.2))
        train_set, val_set = dataset.split(fraction, seed if seed is not None else int((trained or {}).get("seed", 0)))
        dataset = val_set if split == "val" else train_set
        if len(dataset) == 0:
            raise ValueError(f"{data}: the {split} split is empty (val fraction {fraction})")
    metrics = kind.evaluate(folder, dataset, str(device or default_device()))
    per_class = metrics.pop("per_class", {})
    return {
        "kind": kind.name,
        "model": str(model),
        "dataset": {"name": dataset_name(data), "format": dataset.format or format, "split": split,
                    "num_images": len(dataset), "class_names": list(dataset.class_names)},
        "metrics": metrics,
        "per_class": per_class,
        "main_metric": kind.main_metric,
    }


def format_table(results: dict[str, Any]) -> str:
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from hub_cards.kinds import METRIC_LABELS

    d = results["dataset"]
    unit = "clips" if results["kind"] == "sam2-video" else "images"
    lines = [f"{results['kind']} model {results['model']} on {d['name']} ({d['split']}, {d['num_images']} {unit})"]
    width = max((len(METRIC_LABELS.get(k, k)) for k in results["metrics"]), default=10)
    for key, value in results["metrics"].items():
        mark = "  <- main metric" if key == results["main_metric"] else ""
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"  {METRIC_LABELS.get(key, key):{width}s}  {shown}{mark}")
    for name, values in results["per_class"].items():
        main = values.get(results["main_metric"])
        if main is not None:
            lines.append(f"  class {name}: {METRIC_LABELS.get(results['main_metric'], results['main_metric'])} "
                         f"{main:.3f}")
    return "\n".join(lines)
