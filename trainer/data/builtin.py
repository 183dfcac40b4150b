"""The built-in sample dataset: real photos with no download, so `--data builtin` trains anywhere.

Source: `skimage.data.coins()`, the photo of Greek coins from Pompeii (Brooklyn Museum Collection, no known
copyright restrictions) that ships inside the scikit-image wheel. Masks are derived, reproducibly, with the
classic scikit-image recipe: Sobel elevation map, watershed from sure-background (<30) and sure-coin (>150)
markers, holes filled, connected components; each coin is one instance of class "coin". The 303x384 photo is cut
along background gaps into 6 tiles (about 150x128, 3-5 whole coins each), small enough for a quick CPU fine-tune.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from trainer.data.export import write_coco
from trainer.data.normalize import to_uint8_rgb
from trainer.data.sample import Sample, SegmentationDataset

VERSION = "1"
CLASS_NAMES = ["coin"]
GRID = (4, 2)  # tile rows x columns: one row of coins per band, halved
MIN_COIN_AREA = 200  # drops watershed specks; the smallest real coin is ~1000 px


def cache_dir() -> Path:
    return Path(os.environ.get("SEGKIT_DATA_DIR") or Path.home() / ".cache" / "segkit" / "sample-data")


def builtin_dataset_path() -> Path:
    """The built-in COCO folder, written on first use into the cache (`$SEGKIT_DATA_DIR`, else
    ~/.cache/segkit/sample-data) and reused after that."""
    target = cache_dir() / f"coins-v{VERSION}"
    if (target / "annotations.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside then renamed: a concurrent run (or a killed one) never sees a half-written folder.
    staging = Path(tempfile.mkdtemp(prefix=".coins-", dir=target.parent))
    try:
        write_builtin(staging)
        os.rename(staging, target)
    except OSError:
        if not (target / "annotations.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_builtin(out_dir: str | Path) -> Path:
    """Write the built-in dataset (COCO, RLE masks) to `out_dir`; same bytes every time."""
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
    from skimage import data

    photo = data.coins()
    labels = coin_labels(photo)
    rows = _cuts(labels.any(axis=1), GRID[0])
    samples = []
    for r, (y0, y1) in enumerate(zip(rows[:-1], rows[1:])):
        cols = _cuts(labels[y0:y1].any(axis=0), GRID[1])  # per band: coin columns do not line up across rows
        for c, (x0, x1) in enumerate(zip(cols[:-1], cols[1:])):
            tile = labels[y0:y1, x0:x1]
            ids = [v for v in np.unique(tile) if v]
            image, normalization = to_uint8_rgb(photo[y0:y1, x0:x1], "coins")
            masks = np.stack([tile == v for v in ids]) if ids else np.zeros((0, *tile.shape), bool)
            samples.append(Sample(image, masks, np.zeros(len(ids), np.int64), f"coins_r{r}c{c}", normalization))
    return SegmentationDataset.from_samples(samples, CLASS_NAMES, root="builtin", format="coco")


def coin_labels(photo: np.ndarray) -> np.ndarray:
    """One label per coin (0 = background)."""
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


def _cuts(occupied: np.ndarray, parts: int) -> list[int]:
    """Split positions along one axis, each moved to the nearest background-only line so no coin is cut."""
    n = len(occupied)
    free = np.flatnonzero(~occupied)
    cuts = [0]
    for k in range(1, parts):
        ideal = n * k // parts
        cuts.append(int(free[np.argmin(np.abs(free - ideal))]) if len(free) else ideal)
    return [*cuts, n]
