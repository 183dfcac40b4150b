"""`python -m trainer quickstart`: every trainer once on the built-in data, each model pushed to the local hub.

Offline and on CPU: random-init models (the video run starts from the SAM2 run's image model, as sam2 trains),
small images, short runs — it shows the pipelines learn and fills local_hub/ with the models the Gradio app opens
on. Each step is the same command a user would type (printed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

import yaml

# name -> the command's arguments (after `python -m trainer`); --out and --push-to are added per run.
RECIPES: dict[str, list[str]] = {
    # --eval-clicks 10: the random init needs every simulated click on every object; 10 halves that evaluation and
    # still gives mIoU after 1/3/5/10 clicks; NoC is then capped at 10, and the headline says so (issue 30)
    "sam2": ["sam2", "--no-pretrained", "--image-size", "256", "--lr", "1e-3", "--eval-images", "0",
             "--auto-points-per-side", "8", "--eval-clicks", "10"],
    # half-width FPN and heads (128 channels, box head 512): 60 steps 2.3-2.5x faster (cProfile: the mask head's
    # 256-channel convolutions and RoIAlign's backward were most of a step), held-out segm AP 60 vs 61, 3 seeds (README)
    "detectron2": ["detectron2", "--no-pretrained", "--depth", "18", "--min-size", "256", "--lr", "0.01",
                   "--steps", "60", "--opts", "MODEL.FPN.OUT_CHANNELS", "128", "MODEL.ROI_MASK_HEAD.CONV_DIM", "128",
                   "MODEL.ROI_BOX_HEAD.FC_DIM", "512"],
    # 80 steps, not 40: held-out mIoU 0.85 -> 0.89 and 1.35x zoomed-out windows 0.81 -> 0.88, 3 seeds (README)
    "semantic": ["semantic", "--no-pretrained", "--image-size", "128", "--steps", "80", "--auto-points-per-side", "8"],
    # sam2's own order: image training, then video. The video run starts from the SAM2 run above (its decoder
    # segments; its memory modules are still random and start local, --memory-start auto), at its image size: its
    # "before" is that image model tracking. lr 1e-3, 2 clips a step: one clip a step collapsed on 1 run of 4 (J&F
    # 0.17 on all 6 held-out clips; README's video table), 2 gave 0.45-0.58 from the same image models; 20 steps of 2
    # collapsed on 1 seed of 3 (0.12)
    "sam2-video": ["sam2-video", "--weights", "runs/quickstart-sam2", "--image-size", "256", "--frames", "4",
                   "--batch-size", "2", "--lr", "1e-3", "--steps", "30", "--correction-points", "2",
                   "--eval-clips", "1", "--overlays", "1"],
}
IMAGE_RUN = "runs/quickstart-sam2"  # the recipes' name of the SAM2 run the video run starts from
# The figures each run's headline gives (default: its card's first three): SAM2 by box and by the standard clicks.
HEADLINES = {"sam2": ("miou_box", "miou_1pt", "miou_click_1", "miou_click_3", "miou_click_5", "noc_85"),
             "sam2-video": ("jf_mask", "jf_click")}
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
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from hub_cards.kinds import KINDS, METRIC_LABELS

    summary = json.loads(summary_path.read_text())
    metrics = summary["metrics"]
    keys = HEADLINES.get(summary["kind"], KINDS[summary["kind"]].metrics[:3])
    config = summary_path.with_name("config.yaml")
    cap = (yaml.safe_load(config.read_text()) or {}).get("eval_clicks") if config.is_file() else None
    labels = {k: METRIC_LABELS.get(k, k) + (f" (capped at {cap})" if k.startswith("noc_") and cap else "")
              for k in keys}
    line = " | ".join(f"{labels[k]} {metrics['before'][k]:.2f} -> {metrics['after'][k]:.2f}"
                    for k in keys if k in metrics.get("after", {}) and k in metrics.get("before", {}))
    refs = (summary.get("references") or {}).get("metrics") or {}  # sam2-video: the trackers it must beat
    if refs:
        line += f" | references: nothing predicted {refs['jf_none']:.2f}, frame 0's mask copied {refs['jf_copy']:.2f}"
    return line


def recipe(name: str, runs: str) -> list[str]:
    """RECIPES[name] with the run folder in place; sam2-video without a finished SAM2 run (`--only sam2-video` on a
    fresh clone) starts from random weights instead, and says so."""
    image_run = f"{runs}/quickstart-sam2"
    argv = [image_run if a == IMAGE_RUN else a for a in RECIPES[name]]
    if "--weights" not in argv:
        return argv
    if (Path(image_run) / "model.safetensors").is_file():
        print(f"{name} starts from the SAM2 image model of {image_run}, at its image size (256 px; its memory modules "
              "still random), as sam2 trains: images first, then video. J&F before = that image model tracking.")
        return argv
    print(f"{name}: no SAM2 run in {image_run} (run the sam2 step first): starting from random weights")
    cut = argv.index("--weights")
    return [*argv[:cut], "--no-pretrained", *argv[cut + 2:]]


def main(args: argparse.Namespace) -> int:
    # lazy: trainer.cli imports this module to register it
    from trainer.cli import main as trainer_main

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        print(f"error: --only: unknown {unknown}; choose from {', '.join(RECIPES)}")
        return 2
    results = []
    for name in names:
        argv = [*recipe(name, args.runs), "--out", f"{args.runs}/quickstart-{name}",
                "--push-to", f"local:{HUB_NAMES[name]}"]
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
