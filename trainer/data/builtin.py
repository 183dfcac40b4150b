"""The built-in sample dataset: real photos with no download, so `--data builtin` trains anywhere.

Source: `skimage.data.coins()`, the photo of Greek coins from Pompeii (Brooklyn Museum Collection, no known
copyright restrictions) that ships inside the scikit-image wheel. Masks are derived, reproducibly, with the
classic scikit-image recipe: Sobel elevation map, watershed from sure-background (<30) and sure-coin (>150)
markers, holes filled, connected components; each coin is one instance of class "coin".

The 303x384 photo has four rows of coins. Training windows come from the top two rows only, the held-out windows
from the bottom two (the band between them is background: no coin is in both parts), so the held-out figures
measure coins the run never saw. Windows sit at random positions (coins cut at their borders stay as partial
masks) and random scales: training at 0.8-1.25x a 128-px window, held-out at 0.75-1.5x, each window kept at the
photo's own pixels. The held-out images carry `"split": "heldout"` in annotations.json, which every trainer and
`evaluate --split val` take as the validation split.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from trainer.data.export import write_coco
from trainer.data.normalize import to_uint8_rgb
from trainer.data.sample import Sample, SegmentationDataset

VERSION = "2"
CLASS_NAMES = ["coin"]
MIN_COIN_AREA = 200  # drops watershed specks; the smallest real coin is ~1000 px
HELDOUT_Y = 150  # photo rows >= this are held out: the background band between the 2nd and 3rd rows of coins
TILE = 128  # side of a scale-1 window, photo pixels
TRAIN_WINDOWS, TRAIN_SCALES = 24, (0.8, 1.25)
HELDOUT_WINDOWS, HELDOUT_SCALES = 16, (0.75, 1.5)
MIN_PART = 100  # pixels of a coin a window must hold for it to be an instance (smaller cuts are ambiguous slivers)


def cache_dir() -> Path:
    return Path(os.environ.get("SEGKIT_DATA_DIR") or Path.home() / ".cache" / "segkit" / "sample-data")


def builtin_dataset_path() -> Path:
    """The built-in COCO folder, written on first use into the cache (`$SEGKIT_DATA_DIR`, else
    ~/.cache/segkit/sample-data) and reused after that."""
    return cached_folder(cache_dir() / f"coins-v{VERSION}", "annotations.json", write_builtin)


def cached_folder(target: Path, marker: str, write: Callable[[Path], object]) -> Path:
    """`target`, written by write(folder) on first use (it exists once `target/marker` does), then reused."""
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside then renamed: a concurrent run (or a killed one) never sees a half-written folder.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(staging)
        os.rename(staging, target)
    except OSError:
        if not (target / marker).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_builtin(out_dir: str | Path) -> Path:
    """Write the built-in dataset (COCO, RLE masks) to `out_dir`; same bytes every time."""
    # lazy: scikit-image and scipy only when the sample data is first written
    import skimage

    info = {
        "description": "segkit built-in sample: tiles of the scikit-image 'coins' photo, one instance per coin",
        "source": f"skimage.data.coins() from scikit-image {skimage.__version__} (bundled, no download): Greek "
                  "coins from Pompeii, Brooklyn Museum Collection, "
                  "https://www.brooklynmuseum.org/opencollection/archives/image/51611 (no known copyright "
                  "restrictions)",
        "masks": "derived: Sobel elevation + marker watershed (<30 background, >150 coin), holes filled, "
                 "connected components",
        "version": VERSION,
        "url": "https://scikit-image.org/docs/stable/api/skimage.data.html#skimage.data.coins",
    }
    return write_coco(builtin_samples(), out_dir, info=info)


def builtin_samples() -> SegmentationDataset:
    # lazy: scikit-image and scipy only when the sample data is first written
    from skimage import data

    photo = data.coins()
    labels = coin_labels(photo)
    rng = np.random.default_rng(int(VERSION))  # PCG64: the same windows on every machine and numpy version
    parts = [("train", (0, HELDOUT_Y), TRAIN_WINDOWS, TRAIN_SCALES),
             ("heldout", (HELDOUT_Y, photo.shape[0]), HELDOUT_WINDOWS, HELDOUT_SCALES)]
    samples = []
    for split, rows, count, scales in parts:
        for k in range(count):
            y0, y1, x0, x1 = window(rng, rows, photo.shape[1], scales)
            tile = labels[y0:y1, x0:x1]
            ids = [v for v in np.unique(tile) if v and (tile == v).sum() >= MIN_PART]
            image, normalization = to_uint8_rgb(photo[y0:y1, x0:x1], "coins")
            masks = np.stack([tile == v for v in ids]) if ids else np.zeros((0, *tile.shape), bool)
            samples.append(Sample(image, masks, np.zeros(len(ids), np.int64), f"coins_{split}_{k:02d}",
                                  normalization, split))
    return SegmentationDataset.from_samples(samples, CLASS_NAMES, root="builtin", format="coco")


def window(rng: np.random.Generator, rows: tuple[int, int], width: int,
           scales: tuple[float, float]) -> tuple[int, int, int, int]:
    """A random window (y0, y1, x0, x1) inside `rows`: side TILE/scale (area-wise), aspect 3:4 to 4:3."""
    side = TILE / rng.uniform(*scales)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    h = int(min(round(side / np.sqrt(aspect)), rows[1] - rows[0]))
    w = int(min(round(side * side / h), width))
    y0 = int(rng.integers(rows[0], rows[1] - h + 1))
    x0 = int(rng.integers(0, width - w + 1))
    return y0, y0 + h, x0, x0 + w


def coin_labels(photo: np.ndarray) -> np.ndarray:
    """One label per coin (0 = background)."""
    # lazy: scikit-image and scipy only when the sample data is first written
    from scipy import ndimage
    from skimage.filters import sobel
    from skimage.measure import label
    from skimage.segmentation import watershed

    markers = np.zeros(photo.shape, np.uint8)
    markers[photo < 30] = 1
    markers[photo > 150] = 2
    coins = ndimage.binary_fill_holes(watershed(sobel(photo), markers) == 2)
    labels = label(coins)
    areas = np.bincount(labels.ravel())
    labels[areas[labels] < MIN_COIN_AREA] = 0
    return label(labels > 0)
