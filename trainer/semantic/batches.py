"""Training images with their label maps at model resolution, and the items each step (and process) sees.

The SAM2 trainer's TrainingImages with label maps instead of prompts: the same seeded views and augmentation
(trainer/augment.py; the label map is painted from the augmented instance masks), images decoded per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from trainer.augment import policy
from trainer.data.sample import DataError, Sample, SegmentationDataset
from trainer.engine.feature_cache import image_key
from trainer.engine.images import FRESH, TrainingImages, resized_image
from trainer.semantic.labels import label_map


@dataclass
class Item:
    index: int
    view: int  # the augmented view (feature cache key), or FRESH
    image: np.ndarray  # S x S x 3 uint8
    labels: torch.Tensor  # S x S int64, 0 = background

    @property
    def cache_key(self) -> str | None:
        return None if self.view == FRESH else image_key(self.image)


def sample_labels(sample: Sample, num_classes: int) -> np.ndarray:
    """The sample's label map at its own resolution; a class id the model does not have names the file."""
    bad = sample.class_ids[(sample.class_ids < 0) | (sample.class_ids >= num_classes - 1)]
    if len(bad):
        raise DataError(sample.source, f"class id {int(bad[0])} is outside the dataset's {num_classes - 1} classes")
    return label_map(sample.masks, sample.class_ids)


def to_model_size(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, torch.Tensor]:
    """The image bilinear, its label map nearest (no invented classes), at S x S."""
    image = resized_image(image, size, size)
    labels = Image.fromarray(labels.astype(np.int32)).resize((size, size), Image.NEAREST)
    return image, torch.from_numpy(np.asarray(labels).astype(np.int64))


class LabelledImages(TrainingImages):
    keeps_empty = True

    def __init__(self, dataset: SegmentationDataset, size: int, num_classes: int, policy, seed: int, views: int = 0,
                 progress: bool = True):
        super().__init__(dataset, size, policy, seed, views, progress)
        self.num_classes = num_classes

    @classmethod
    def for_run(cls, dataset: SegmentationDataset, cfg, num_classes: int,  # type: ignore[override]
                progress: bool = True) -> "LabelledImages":

        return cls(dataset, cfg.image_size, num_classes, policy(cfg.augment), cfg.seed,
                   progress=progress).cached_views(cfg)

    def item(self, pos: int, step: int, seed: int, max_objects: int = 0) -> Item:  # type: ignore[override]
        index, view, _ = self.draw(pos, step, seed)
        sample, image, masks, kept = self.augmented(index, view, step)
        sample_labels(sample, self.num_classes)  # names the file of a class id the model lacks
        image, labels = to_model_size(image, label_map(masks, sample.class_ids[kept]), self.size)
        return Item(index, view, image, labels)

    def pixel_frequencies(self) -> torch.Tensor:
        """Share of (un-augmented) training pixels per class, for --class-weights balanced."""
        counts = torch.zeros(self.num_classes, dtype=torch.float64)
        for index in self.indices:
            sample = self.dataset[index]
            _, labels = to_model_size(sample.image, sample_labels(sample, self.num_classes), self.size)
            counts += torch.bincount(labels.flatten(), minlength=self.num_classes).double()
        return counts / counts.sum()


def make_items(images: LabelledImages, positions: list[int], step: int, seed: int) -> list[Item]:
    return [images.item(pos, step, seed) for pos in positions]
