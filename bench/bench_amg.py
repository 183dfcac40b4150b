"""Automatic masks: sam2's SAM2AutomaticMaskGenerator vs ours (trainer/sam2_model/automatic.py), in one run.

    python bench/bench_amg.py [--sides 8 16 32] [--image-size 1024] [--settings bench|sam2] [--weights RUN_OR_FILE]

For each grid: seconds per image for both (same model, image, settings, embedding included), the speed-up, the
mask counts and their agreement: every stock mask matched to its best mask of ours (mean matched IoU, share >= 0.9)
and the other way round. `--settings bench` is bench_app_speed.py's (no IoU / stability filter: every grid mask
reaches NMS, the worst case); `sam2` is sam2's own defaults (predicted IoU > 0.8, stability >= 0.95); `no-nms`
keeps every grid mask (3 per point), so all of them are compared, not only the survivors (a random-init or young
model's masks all cover most of the image and NMS leaves one).
Default model: random-init sam2.1 tiny (offline); `--weights` takes a trained checkpoint or run folder.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
warnings.filterwarnings("ignore")

SETTINGS = {"bench": dict(pred_iou_thresh=0.0, stability_score_thresh=0.0),
            "sam2": dict(pred_iou_thresh=0.8, stability_score_thresh=0.95),
            "no-nms": dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)}


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, float]:
    """Mean best IoU of each mask of `a` with the masks of `b`, and the share of `a` matched at IoU >= 0.9."""
    from trainer.data.instances import iou_matrix

    if not a:
        return (1.0, 1.0) if not b else (0.0, 0.0)
    best = iou_matrix(np.stack(a), np.stack(b)).max(1) if b else np.zeros(len(a))
    return float(best.mean()), float((best >= 0.9).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sides", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--settings", choices=list(SETTINGS), default="bench")
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()

    from skimage import data

    from trainer.sam2_model.model import Sam2Spec, build_model, make_mask_generator

    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", args.image_size), args.weights).eval()
    image = data.astronaut()
    print(f"sam2.1 tiny ({args.weights or 'random init'}), model input {args.image_size}, astronaut "
          f"{image.shape[1]}x{image.shape[0]}, settings {args.settings} {SETTINGS[args.settings]}, "
          f"{torch.get_num_threads()} torch threads, CPU")
    predictor = make_mask_generator(model).predictor
    with torch.inference_mode():
        start = time.perf_counter()
        predictor.set_image(image)
    print(f"image embedding (part of every time below, both sides): {time.perf_counter() - start:.1f} s")
    for side in args.sides:
        results = {}
        for name, stock in (("sam2", True), ("ours", False)):
            generator = make_mask_generator(model, stock=stock, points_per_side=side, **SETTINGS[args.settings])
            start = time.perf_counter()
            with torch.inference_mode():
                masks = [m["segmentation"] for m in generator.generate(image)]
            results[name] = (time.perf_counter() - start, masks)
        (t_stock, stock), (t_ours, ours) = results["sam2"], results["ours"]
        s2o, o2s = agreement(stock, ours), agreement(ours, stock)
        print(f"{side:2d}² points: sam2 {t_stock:6.1f} s, ours {t_ours:6.1f} s -> {t_stock / t_ours:4.1f}x | masks "
              f"{len(stock)} vs {len(ours)} | sam2->ours matched IoU {s2o[0]:.3f} ({s2o[1]:.0%} >= 0.9), "
              f"ours->sam2 {o2s[0]:.3f} ({o2s[1]:.0%})", flush=True)


if __name__ == "__main__":
    main()
