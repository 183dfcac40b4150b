"""`python -m trainer quickstart`: every trainer once on the built-in data, each model pushed to the local hub.

Offline and on CPU: random-init models, small images, short runs — it shows the pipelines learn and fills
local_hub/ with the models the Gradio app opens on. Each step is the same command a user would type (printed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

# name -> the command's arguments (after `python -m trainer`); --out and --push-to are added per run.
RECIPES: dict[str, list[str]] = {
    "sam2": ["sam2", "--no-pretrained", "--image-size", "256", "--lr", "1e-3", "--eval-images", "0",
             "--auto-points-per-side", "8"],
    "detectron2": ["detectron2", "--no-pretrained", "--depth", "18", "--min-size", "256", "--lr", "0.01",
                   "--steps", "60"],
    "semantic": ["semantic", "--no-pretrained", "--image-size", "128", "--steps", "40", "--auto-points-per-side", "8"],
    "sam2-video": ["sam2-video", "--no-pretrained", "--image-size", "128", "--frames", "4", "--lr", "5e-4", "--steps",
                   "30", "--correction-points", "2", "--eval-clips", "1", "--overlays", "1"],
}
# The figures each run's headline gives (default: its card's first three): SAM2 by box and by the standard clicks.
HEADLINES = {"sam2": ("miou_box", "miou_1pt", "miou_click_1", "miou_click_3", "miou_click_5", "noc_85")}
HUB_NAMES = {"sam2": "segkit/sam2-quickstart", "detectron2": "segkit/maskrcnn-quickstart",
             "semantic": "segkit/semantic-quickstart", "sam2-video": "segkit/sam2-video-quickstart"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "quickstart", help="train every model kind on the built-in data and push each to the local hub",
        description="Runs, one after the other: " + "; ".join(
            f"python -m trainer {shlex.join(args)}" for args in RECIPES.values()) +
        ". Each run lands in runs/quickstart-<name>/ and in the local hub as segkit/<name>-quickstart.")
    parser.add_argument("--only", default=",".join(RECIPES), help=f"comma list of {', '.join(RECIPES)} "
                        "(default: all)")
    parser.add_argument("--runs", default="runs", help="folder for the run folders (default: runs)")
    parser.set_defaults(func=main)


def headline(summary_path: Path) -> str:
    """The held-out figures of a finished run, from its summary.json."""
    from hub_cards.kinds import KINDS, METRIC_LABELS

    summary = json.loads(summary_path.read_text())
    metrics = summary["metrics"]
    keys = HEADLINES.get(summary["kind"], KINDS[summary["kind"]].metrics[:3])
    return " | ".join(f"{METRIC_LABELS.get(k, k)} {metrics['before'][k]:.2f} -> {metrics['after'][k]:.2f}"
                      for k in keys if k in metrics.get("after", {}) and k in metrics.get("before", {}))


def main(args: argparse.Namespace) -> int:
    from trainer.cli import main as trainer_main

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        print(f"error: --only: unknown {unknown}; choose from {', '.join(RECIPES)}")
        return 2
    results = []
    for name in names:
        argv = [*RECIPES[name], "--out", f"{args.runs}/quickstart-{name}", "--push-to", f"local:{HUB_NAMES[name]}"]
        print(f"\n== {name}: python -m trainer {shlex.join(argv)}", flush=True)
        start = time.perf_counter()
        code = trainer_main(argv)
        results.append((name, code, time.perf_counter() - start))
        if code:
            break
    print("\nquickstart:")
    for name, code, seconds in results:
        print(f"  {name:11s} {'ok' if code == 0 else f'failed ({code})':10s} {seconds:6.0f} s  -> "
              f"{args.runs}/quickstart-{name}, local hub {HUB_NAMES[name]}")
    print("held out (windows of the photo's other half, at other scales, never trained on), before -> after:")
    for name, code, _ in results:
        if code == 0:
            print(f"  {name:11s} {headline(Path(args.runs) / f'quickstart-{name}' / 'summary.json')}")
    if all(code == 0 for _, code, _ in results):
        print("next: .venv/bin/python app.py  (the Space opens on these models)")
    return max((code for _, code, _ in results), default=0)
