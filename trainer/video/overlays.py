"""Held-out clips drawn as strips of frames: base model (top row) vs fine-tuned (bottom row), both tracking from
the first frame's masks; predicted masks in colour, ground-truth outlines in white."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer.checkpoint import atomic_write

COLOURS = np.random.default_rng(0).uniform(0.25, 1.0, size=(64, 3))


def paint(frame: np.ndarray, masks: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
    """A frame (H x W x 3 uint8) with masks (N x H x W) blended in and the truth's outlines in white."""
    # lazy: scikit-image only when drawing
    from skimage.segmentation import find_boundaries

    canvas = frame.astype(np.float32) / 255
    for n, mask in enumerate(masks):
        canvas[mask] = 0.45 * canvas[mask] + 0.55 * COLOURS[n % len(COLOURS)]
    for gt in truth if truth is not None else []:
        canvas[find_boundaries(gt, mode="inner")] = 1.0
    return (canvas * 255).astype(np.uint8)


def strip_frames(num_frames: int, shown: int = 6) -> list[int]:
    return sorted(set(np.linspace(0, num_frames - 1, min(shown, num_frames)).round().astype(int).tolist()))


def draw_strip(clip, rows: list[tuple[str, np.ndarray]], path: str | Path, shown: int = 6) -> Path:
    """One PNG: a row per (title, predictions T x N x H x W), columns = frames spread over the clip."""
    # lazy: matplotlib only when drawing (seconds to import)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = strip_frames(clip.num_frames, shown)
    h, w = clip.frames[0].shape[:2]
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(1.9 * len(frames), 0.5 + 1.9 * len(rows) * h / w),
                             squeeze=False)
    for r, (title, pred) in enumerate(rows):
        for c, t in enumerate(frames):
            ax = axes[r, c]
            ax.imshow(paint(clip.frames[t], pred[t], clip.masks[t]))
            ax.set_title(f"{title}, frame {t}" if c == 0 else f"frame {t}", fontsize=7)
            ax.axis("off")
    fig.suptitle(f"{Path(clip.source).name}: tracked from frame 0's masks", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    plt.close(fig)
    return Path(path)
