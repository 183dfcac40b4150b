"""Training images with their label maps at model resolution, and the items each step (and process) sees.

Which images a step sees, and whether each is flipped, come from the SAM2 trainer's seeded helpers (seed, step,
sample index): a 2-process run, a resumed run and one uninterrupted run draw the same.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from trainer.data.sample import DataError, Sample, SegmentationDataset
from trainer.sam2_ft.batches import sample_seed
from trainer.semantic.labels import label_map


@dataclass
class Labelled:
    image: np.ndarray  # S x S x 3 uint8 (sam2 resizes to a square, ignoring aspect ratio)
    labels: torch.Tensor  # S x S int64, 0 = background


@dataclass
class Item:
    index: int
    flip: bool
    image: np.ndarray  # S x S x 3 uint8, flipped if `flip`
    labels: torch.Tensor  # S x S int64, flipped if `flip`

    @property
    def cache_key(self) -> tuple[int, bool]:
        return (self.index, self.flip)


def sample_labels(sample: Sample, num_classes: int) -> np.ndarray:
    """The sample's label map at its own resolution; a class id the model does not have names the file."""
    bad = sample.class_ids[(sample.class_ids < 0) | (sample.class_ids >= num_classes - 1)]
    if len(bad):
        raise DataError(sample.source, f"class id {int(bad[0])} is outside the dataset's {num_classes - 1} classes")
    return label_map(sample.masks, sample.class_ids)


def resize_dataset(dataset: SegmentationDataset, size: int, num_classes: int,
                   progress: bool = True) -> list[tuple[int, Labelled]]:
    """Every sample once at model resolution: the image bilinear, its label map nearest (no invented classes).

    Images without objects stay (they teach the background); a split with no object at all is refused.
    """
    from PIL import Image

    out = []
    for index, sample in enumerate(tqdm(dataset, desc="loading data", disable=not progress, leave=False)):
        image = np.array(Image.fromarray(sample.image).resize((size, size), Image.BILINEAR))
        labels = Image.fromarray(sample_labels(sample, num_classes).astype(np.int32)).resize((size, size),
                                                                                              Image.NEAREST)
        out.append((index, Labelled(image, torch.from_numpy(np.asarray(labels).astype(np.int64)))))
    if not out or not any(item.labels.any() for _, item in out):
        raise DataError(dataset.root or "dataset", f"none of its {len(dataset)} training images has an object mask")
    empty = sum(not item.labels.any() for _, item in out)
    if empty:
        warnings.warn(f"{empty} training image(s) have no objects: they train the background only", stacklevel=2)
    return out


def make_items(data: list[tuple[int, Labelled]], positions: list[int], step: int, seed: int,
               hflip: bool) -> list[Item]:
    items = []
    for pos in positions:
        index, sample = data[pos]
        flip = hflip and bool(np.random.default_rng(sample_seed(seed, step, index)).random() < 0.5)
        image, labels = sample.image, sample.labels
        if flip:
            image, labels = np.ascontiguousarray(image[:, ::-1]), labels.flip(-1)
        items.append(Item(index, flip, image, labels))
    return items


def pixel_frequencies(data: list[tuple[int, Labelled]], num_classes: int) -> torch.Tensor:
    """Share of training pixels per class (for --class-weights balanced)."""
    counts = sum(torch.bincount(item.labels.flatten(), minlength=num_classes) for _, item in data)
    return counts.double() / counts.sum()
