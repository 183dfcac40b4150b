"""Validation overlays: image | ground truth | prediction, one colour per class, with a legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer.checkpoint import atomic_write
from trainer.data.sample import Sample
from trainer.semantic.labels import label_map, rgb


def colorize(image: np.ndarray, labels: np.ndarray, colors: list[str], alpha: float = 0.55) -> np.ndarray:
    """The class map blended over the image (background left as it is)."""
    table = np.array([rgb(c) for c in colors], np.float32)
    out = image.astype(np.float32)
    shown = labels > 0
    out[shown] = (1 - alpha) * out[shown] + alpha * table[labels[shown]]
    return out.astype(np.uint8)


def draw_overlays(samples: list[Sample], predictions: list[np.ndarray], class_names: list[str], colors: list[str],
                  folder: str | Path) -> list[Path]:
    """One PNG per sample: overlays/val_<i>.png."""
    # lazy: matplotlib only when drawing (seconds to import)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    # background is left unpainted, so only the classes are in the legend
    legend = [Patch(facecolor=c, edgecolor="black", label=n) for n, c in zip(class_names[1:], colors[1:])]
    paths = []
    for i, (sample, pred) in enumerate(zip(samples, predictions)):
        h, w = sample.image.shape[:2]
        fig, axes = plt.subplots(1, 3, figsize=(11, 0.9 + 3.6 * h / w))
        truth = label_map(sample.masks, sample.class_ids)
        panels = (sample.image, colorize(sample.image, truth, colors), colorize(sample.image, pred, colors))
        for ax, panel, title in zip(axes, panels, ("image", "ground truth", "prediction")):
            ax.imshow(panel)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        fig.legend(handles=legend, loc="lower center", ncol=min(len(legend), 6), fontsize=8, frameon=False)
        fig.suptitle(Path(sample.source).name, fontsize=9)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        path = Path(folder) / f"val_{i:02d}.png"
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
        plt.close(fig)
        paths.append(path)
    return paths
