"""Validation metrics of a class map, at each image's own resolution, from one confusion matrix over the split:

    iou_<class>     intersection / union of that class's pixels (classes absent from both truth and prediction
                    are left out)
    miou            mean of those per-class IoUs (background included)
    pixel_accuracy  share of pixels given their true class

The promptless baseline is scored the same way: SAM2's automatic mask generator, each of its masks given the class
of the ground-truth instance it overlaps most (IoU > 0; else it stays background), painted with the label-map rule
(smaller over larger). Matching to the truth is generous to the baseline: it is told the class of every mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from trainer.data.instances import iou_matrix
from trainer.data.sample import Sample, SegmentationDataset
from trainer.sam2_model.model import inference_mode, make_mask_generator
from trainer.semantic.labels import label_map, semantic_classes
from trainer.semantic.model import load_folder

METRICS = ("miou", "pixel_accuracy")


def confusion(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """num_classes x num_classes pixel counts, rows = true class, columns = predicted class."""
    index = truth.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(matrix: np.ndarray, class_names: list[str]) -> dict[str, float]:
    inter = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - inter
    ious = {f"iou_{name}": float(inter[c] / union[c]) for c, name in enumerate(class_names) if union[c] > 0}
    return {"miou": float(np.mean(list(ious.values()))) if ious else 0.0,
            "pixel_accuracy": float(inter.sum() / max(matrix.sum(), 1)), **ious}


def check_classes(dataset: SegmentationDataset, class_names: list[str]) -> None:
    expected = semantic_classes(dataset.class_names)
    if expected != list(class_names):
        raise ValueError(f"{dataset.root or 'dataset'}: its classes {expected[1:]} are not the model's "
                         f"{list(class_names)[1:]}")


def score_dataset(dataset: SegmentationDataset, class_names: list[str], predict: Callable[[Sample], np.ndarray],
                  max_images: int = 0, progress: bool = True, desc: str = "evaluating") -> dict[str, float]:
    """The metrics of `predict` (sample -> H x W class map) over (the first max_images of) `dataset`."""
    check_classes(dataset, class_names)
    n_images = len(dataset) if max_images <= 0 else min(max_images, len(dataset))
    matrix = np.zeros((len(class_names), len(class_names)), np.int64)
    for index in tqdm(range(n_images), desc=desc, disable=not progress, leave=False):
        sample = dataset[index]
        matrix += confusion(label_map(sample.masks, sample.class_ids), predict(sample), len(class_names))
    return scores(matrix, class_names)


def evaluate(segmenter, dataset: SegmentationDataset, max_images: int = 0, progress: bool = True) -> dict:
    """A SemanticSegmenter's metrics on `dataset`."""
    return score_dataset(dataset, segmenter.class_names, lambda s: segmenter.predict(s.image), max_images, progress)


def baseline_labels(auto_masks: np.ndarray, truth: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Automatic masks -> a class map: each mask takes the class of the truth instance it overlaps most."""
    matrix = iou_matrix(auto_masks, truth)
    keep = matrix.max(1) > 0 if matrix.shape[1] else np.zeros(len(auto_masks), bool)
    classes = class_ids[matrix.argmax(1)[keep]] if keep.any() else np.zeros(0, np.int64)
    return label_map(auto_masks[keep].reshape(-1, *truth.shape[1:]), classes)


def automatic_baseline(sam2: torch.nn.Module, dataset: SegmentationDataset, class_names: list[str],
                       max_images: int = 0, points_per_side: int = 16, thresholds: dict[str, float] | None = None,
                       progress: bool = True) -> dict[str, float]:
    """The promptless SAM2 baseline (SAM2AutomaticMaskGenerator), scored like the semantic model. `thresholds`:
    its pred_iou_thresh / stability_score_thresh (the SAM2 trainer's lax evaluation ones: see auto_thresholds)."""
    with inference_mode(sam2):
        generator = make_mask_generator(sam2, points_per_side=points_per_side, points_per_batch=64,
                                        **(thresholds or {}))

        def predict(sample: Sample) -> np.ndarray:
            auto = [m["segmentation"] for m in generator.generate(sample.image)]
            masks = np.stack(auto) if auto else np.zeros((0, *sample.image.shape[:2]), bool)
            return baseline_labels(masks, sample.masks, sample.class_ids)

        return score_dataset(dataset, class_names, predict, max_images, progress, desc="baseline")


def evaluate_folder(folder: str | Path, dataset: SegmentationDataset, device: str = "cpu") -> dict[str, float]:
    """`python -m trainer evaluate` for a semantic model: the keys of its summary's metrics["after"]."""
    return evaluate(load_folder(folder, device), dataset, progress=False)
