"""A pushed SAM2 repo read by transformers vs by segkit (issue 28), on the built-in photo's held-out windows.

    PYTHONPATH=. .venv/bin/python bench/bench_hub_transformers.py REPO_FOLDER [--points-per-side 16]
        [--iou-thresh 0.5] [--stability-thresh 0.8] [--images 16]

REPO_FOLDER: a pushed sam2 repo in the official layout (e.g. local_hub/segkit/sam2-quickstart after the quickstart).
Prints, per held-out window and overall:
- box prompts: per object, the IoU of `Sam2Model` + `Sam2Processor` (the repo root) with segkit's predictor
  (`load_model`, sam2.safetensors) — the minimum over every object;
- automatic masks: mean best IoU with the true coins of segkit's generator (`make_mask_generator`, the evaluation's
  settings) and of `pipeline("mask-generation", model=REPO)` with the same grid and thresholds (points_per_crop =
  points per side, pred_iou_thresh, stability_score_thresh, NMS 0.7, one crop), and their mask counts.
A quality measurement (nothing is timed), on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--points-per-side", type=int, default=16)
    parser.add_argument("--iou-thresh", type=float, default=0.5)  # the evaluation's (trainer/sam2_ft/config.py)
    parser.add_argument("--stability-thresh", type=float, default=0.8)
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()

    from PIL import Image
    from transformers import Sam2Model, Sam2Processor, pipeline

    from hub_cards import load_model
    from trainer.data.builtin import builtin_samples
    from trainer.sam2_ft.evaluate import iou_matrix
    from trainer.sam2_model.model import make_mask_generator, make_predictor

    model, spec = load_model(args.repo, kind="sam2")
    model.eval()
    predictor = make_predictor(model)
    settings = dict(points_per_side=args.points_per_side, points_per_batch=64, pred_iou_thresh=args.iou_thresh,
                    stability_score_thresh=args.stability_thresh)
    generators = {"segkit": make_mask_generator(model, **settings),  # what evaluate and the app run
                  "sam2 stock": make_mask_generator(model, stock=True, **settings)}
    hf_model = Sam2Model.from_pretrained(args.repo).eval()
    processor = Sam2Processor.from_pretrained(args.repo)
    theirs_gen = pipeline("mask-generation", model=args.repo, device="cpu")
    heldout = [s for s in builtin_samples() if s.split == "heldout" and len(s.masks)][:args.images]
    print(f"model: sam2.1 {spec.size} at {spec.image_size} px; {len(heldout)} held-out windows; grid "
          f"{args.points_per_side}x{args.points_per_side}, pred_iou_thresh {args.iou_thresh}, "
          f"stability_score_thresh {args.stability_thresh}")
    box_ious: list[float] = []
    best: dict[str, list[float]] = {name: [] for name in (*generators, "transformers")}
    for sample in heldout:
        truth = sample.masks.dense()
        ys_xs = [np.nonzero(m) for m in truth]
        boxes = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for ys, xs in ys_xs], dtype=np.float32)
        predictor.set_image(sample.image)
        ours, _, _ = predictor.predict(box=boxes, multimask_output=False)
        ours = ours.reshape(len(boxes), *sample.image.shape[:2]) > 0
        inputs = processor(images=sample.image, input_boxes=[boxes.tolist()], return_tensors="pt")
        with torch.no_grad():
            out = hf_model(**inputs, multimask_output=False)
        theirs = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][:, 0].numpy()
        ious = [float((a & b).sum() / max((a | b).sum(), 1)) for a, b in zip(ours, theirs)]
        box_ious += ious
        auto = {name: [m["segmentation"] for m in gen.generate(sample.image)] for name, gen in generators.items()}
        auto["transformers"] = [np.asarray(m, bool) for m in theirs_gen(
            Image.fromarray(sample.image), points_per_crop=args.points_per_side, points_per_batch=64,
            pred_iou_thresh=args.iou_thresh, stability_score_thresh=args.stability_thresh,
            crops_nms_thresh=0.7)["masks"]]
        line = []
        for name, masks in auto.items():
            scores = iou_matrix(truth, masks).max(1) if masks else np.zeros(len(truth))
            best[name] += scores.tolist()
            line.append(f"{name} {len(masks)} masks, {scores.mean():.3f}")
        print(f"{sample.source}: {len(truth)} coins; box IoU min {min(ious):.4f}; automatic (masks, mean best IoU): "
              + "; ".join(line), flush=True)
    print(f"box prompts, {len(box_ious)} objects: min IoU {min(box_ious):.4f}, mean {np.mean(box_ious):.4f}")
    means = {name: float(np.mean(values)) for name, values in best.items()}
    print(f"automatic masks, {len(best['segkit'])} coins, mean best IoU: "
          + ", ".join(f"{name} {value:.4f}" for name, value in means.items())
          + f"; transformers - segkit {means['transformers'] - means['segkit']:+.4f}")


if __name__ == "__main__":
    main()
