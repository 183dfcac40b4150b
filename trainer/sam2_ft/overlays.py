"""Validation predictions drawn on the images: base model | fine-tuned model, side by side.

Each object is prompted with two positive points (green) and one negative point (red); the predicted masks are
drawn in colour over the image, the ground-truth outlines in white.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainer.checkpoint import atomic_write
from trainer.data.sample import Sample
from trainer.sam2_ft.evaluate import predict
from trainer.sam2_model.model import inference_mode, make_predictor

MAX_SHOWN = 32  # objects drawn per image: a picture of 400 prompted cells says no more, and costs 400 full masks


@dataclass
class Shown:
    masks: np.ndarray  # N x H x W bool
    coords: np.ndarray  # N x P x 2
    labels: np.ndarray  # N x P


def predict_for_overlays(model: torch.nn.Module, samples: list[Sample], seed: int = 0) -> list[Shown]:
    out = []
    with inference_mode(model):
        predictor = make_predictor(model)
        for i, sample in enumerate(samples):
            gt = torch.from_numpy(sample.masks[sample.masks.areas > 0][:MAX_SHOWN].dense())
            if len(gt) == 0:
                out.append(Shown(np.zeros((0, *sample.image.shape[:2]), bool), np.zeros((0, 0, 2)), np.zeros((0, 0))))
                continue
            predictor.set_image(sample.image)
            out.append(Shown(*predict(predictor, gt, "pos_neg", seed=seed + i)))
    return out


def _panel(ax, sample: Sample, shown: Shown, title: str) -> None:
    # lazy: scikit-image only when drawing
    from skimage.segmentation import find_boundaries

    colours = np.random.default_rng(0).uniform(0.2, 1.0, size=(max(len(shown.masks), 1), 3))
    canvas = sample.image.astype(np.float32) / 255
    for mask, colour in zip(shown.masks, colours):
        canvas[mask] = 0.45 * canvas[mask] + 0.55 * colour
    for gt in sample.masks[:MAX_SHOWN]:
        canvas[find_boundaries(gt, mode="inner")] = 1.0
    ax.imshow(canvas)
    for colour, label in (("lime", 1), ("red", 0)):
        pts = shown.coords[shown.labels == label]
        ax.scatter(pts[:, 0], pts[:, 1], c=colour, s=40, marker="*", edgecolors="black", linewidths=0.6)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def draw_overlays(samples: list[Sample], base: list[Shown], tuned: list[Shown], folder: str | Path,
                  titles: tuple[str, str] = ("base", "fine-tuned")) -> list[Path]:
    """One PNG per sample in `folder`: overlays/val_<i>.png."""
    # lazy: matplotlib only when drawing (seconds to import)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for i, (sample, before, after) in enumerate(zip(samples, base, tuned)):
        h, w = sample.image.shape[:2]
        fig, axes = plt.subplots(1, 2, figsize=(8, 0.6 + 4 * h / w))
        _panel(axes[0], sample, before, titles[0])
        _panel(axes[1], sample, after, titles[1])
        fig.suptitle(Path(sample.source).name, fontsize=9)
        fig.tight_layout()
        path = Path(folder) / f"val_{i:02d}.png"
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
        plt.close(fig)
        paths.append(path)
    return paths
