"""Held-out sets that differ from training the way real data does, and every model's figures on each.

    PYTHONPATH=. python bench/heldout_shift.py MODEL [MODEL ...] [--sets windows,zoom,crops,rotated] [--json F]

Every set is cut from the bottom half of scikit-image's coins photo (rows >= trainer.data.builtin.HELDOUT_Y), the
half no built-in training window touches, with its own random generator, so none of these images is the built-in
held-out split either (the one the recipes were tuned on):
- windows: 16 windows at 0.9-1.1x the 128-px training window (the training scale, other places);
- zoom:    16 windows at 1.35x (each coin 1.35x larger after the resize to the model's size);
- zoom_out: 16 windows at 1/1.35x (each coin 1.35x smaller; the window as tall as the held-out rows allow);
- crops:   16 small windows (0.45-0.7x, aspect 1:2 to 2:1): most coins cut at a border;
- rotated: 16 windows rotated by 20-340 degrees (the image bilinear, the labels nearest; the crop stays inside the
           rotated photo, so no padding shows).
Each MODEL (run folder, local-hub name or folder) is scored with `trainer evaluate` (its kind's metrics) on each set.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from skimage import data
from skimage.transform import rotate

from trainer.data.builtin import CLASS_NAMES, HELDOUT_Y, MIN_PART, TILE, coin_labels, window
from trainer.data.export import write_coco
from trainer.data.normalize import to_uint8_rgb
from trainer.data.sample import Sample, SegmentationDataset
from trainer.evaluate import evaluate

COUNT = 16
SETS = ("windows", "zoom", "zoom_out", "crops", "rotated")
# What the table shows per model kind (the first figure of each is its main metric).
SHOWN = {"sam2": ("miou_box", "miou_1pt", "miou_click_1", "miou_click_3", "miou_click_5", "noc_85"),
         "semantic": ("miou",), "detectron2": ("segm_AP",)}


def shifted_set(name: str, seed: int = 10) -> SegmentationDataset:
    """One of SETS as a dataset of COUNT samples."""
    photo = data.coins()
    labels = coin_labels(photo)
    rows = (HELDOUT_Y, photo.shape[0])
    rng = np.random.default_rng(seed + SETS.index(name))
    samples = []
    for k in range(COUNT):
        if name == "rotated":
            image, tile = _rotated_window(photo, labels, rng, rows)
        else:
            scales = {"windows": (0.9, 1.1), "zoom": (1.35, 1.35), "zoom_out": (1 / 1.35, 1 / 1.35),
                      "crops": (1 / 0.7, 1 / 0.45)}[name]
            y0, y1, x0, x1 = window(rng, rows, photo.shape[1], scales)
            if name == "crops":  # stretch the aspect to 1:2 .. 2:1, within the rows and the photo
                aspect = np.exp(rng.uniform(np.log(1 / 2), np.log(2)))
                h = int(np.clip(round((y1 - y0) * np.sqrt(aspect)), 24, rows[1] - rows[0]))
                w = int(np.clip(round((x1 - x0) / np.sqrt(aspect)), 24, photo.shape[1]))
                y0 = int(rng.integers(rows[0], rows[1] - h + 1))
                x0 = int(rng.integers(0, photo.shape[1] - w + 1))
                y1, x1 = y0 + h, x0 + w
            image, tile = photo[y0:y1, x0:x1], labels[y0:y1, x0:x1]
        ids = [v for v in np.unique(tile) if v and (tile == v).sum() >= MIN_PART]
        rgb, normalization = to_uint8_rgb(image, "coins")
        masks = np.stack([tile == v for v in ids]) if ids else np.zeros((0, *tile.shape), bool)
        samples.append(Sample(rgb, masks, np.zeros(len(ids), np.int64), f"coins_{name}_{k:02d}", normalization))
    return SegmentationDataset.from_samples(samples, CLASS_NAMES, root=f"shift-{name}", format="coco")


def _rotated_window(photo: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                    rows: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    side = 100
    outer = int(np.ceil(side * np.sqrt(2)))  # any rotation of the centre side x side stays inside outer x outer
    y0 = int(rng.integers(rows[0], rows[1] - outer + 1))
    x0 = int(rng.integers(0, photo.shape[1] - outer + 1))
    angle = float(rng.uniform(20, 340))
    image = rotate(photo[y0:y0 + outer, x0:x0 + outer], angle, order=1, preserve_range=True).astype(np.uint8)
    tile = rotate(labels[y0:y0 + outer, x0:x0 + outer], angle, order=0, preserve_range=True).astype(labels.dtype)
    c = (outer - side) // 2
    return image[c:c + side, c:c + side], tile[c:c + side, c:c + side]


def write_sets(out_dir: Path, names: tuple[str, ...] = SETS) -> dict[str, Path]:
    return {name: write_coco(shifted_set(name), out_dir / name) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma list of {', '.join(SETS)}")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write every figure as JSON")
    args = parser.parse_args()
    names = tuple(s for s in args.sets.split(",") if s)
    unknown = set(names) - set(SETS)
    if unknown:
        parser.error(f"--sets: unknown {sorted(unknown)}; choose from {', '.join(SETS)}")
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_sets(Path(tmp), names)
        for model in args.models:
            results[model] = {name: evaluate(model, str(folder)) for name, folder in folders.items()}
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def table(results: dict[str, dict[str, dict]]) -> str:
    lines = []
    for model, by_set in results.items():
        kind = next(iter(by_set.values()))["kind"]
        shown = SHOWN.get(kind, (next(iter(by_set.values()))["main_metric"],))
        lines += [f"\n{model} ({kind})", "| set | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
        for name, res in by_set.items():
            metrics = res["metrics"]
            lines.append(f"| {name} | " + " | ".join(_fmt(metrics.get(k)) for k in shown) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
