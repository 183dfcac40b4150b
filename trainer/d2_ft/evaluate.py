"""COCO AP (bbox + segm) with detectron2's COCOEvaluator, and Visualizer overlays of validation predictions."""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from trainer.d2_ft.model import load_folder
from trainer.d2_ft.register import dataset_dicts, register

METRIC_KEYS = {"bbox_AP": ("bbox", "AP"), "bbox_AP50": ("bbox", "AP50"), "segm_AP": ("segm", "AP"),
               "segm_AP50": ("segm", "AP50"), "segm_AP75": ("segm", "AP75")}


def coco_metrics(cfg, model: torch.nn.Module, dataset_name: str, output_dir: str | Path,
                 precision=None) -> dict[str, float]:
    """bbox/segm AP on a registered dataset (all processes take part; the result is complete on the main one).

    COCOEvaluator reports NaN for AP when the model predicts nothing; that is kept (not turned into 0) so a
    silent model is visible in metrics.jsonl.
    """

    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.data import build_detection_test_loader
    from detectron2.evaluation import COCOEvaluator, inference_on_dataset

    # allow_cached_coco=False: a reused run folder must not score against a previous dataset's ground truth.
    evaluator = COCOEvaluator(dataset_name, tasks=("bbox", "segm"), distributed=True, output_dir=str(output_dir),
                              allow_cached_coco=False)
    cfg = cfg.clone()
    cfg.DATALOADER.NUM_WORKERS = 0  # one pass over the images: worker processes cost more than they save
    loader = build_detection_test_loader(cfg, dataset_name)
    # pycocotools prints its AP table to stdout; the numbers go to metrics.jsonl instead.
    with precision.autocast() if precision is not None else contextlib.nullcontext(), \
            contextlib.redirect_stdout(io.StringIO()):
        results = inference_on_dataset(model, loader, evaluator) or {}
    return flatten(results)


def flatten(results: dict[str, Any]) -> dict[str, float]:
    """{'bbox': {'AP': ..}, 'segm': {..}} -> {'bbox_AP': .., 'segm_AP': ..} (only the headline numbers)."""
    out = {}
    for key, (task, metric) in METRIC_KEYS.items():
        value = results.get(task, {}).get(metric)
        if value is not None:
            out[key] = float(value) if not math.isnan(float(value)) else float("nan")
    return out


def draw_overlays(segmenter, dicts: list[dict[str, Any]], metadata, folder: str | Path, limit: int,
                  score_threshold: float = 0.5) -> list[Path]:
    """Predictions on the first `limit` validation images, drawn with detectron2's Visualizer."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.utils.visualizer import ColorMode, Visualizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for record in dicts[:limit]:
        image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
        instances = segmenter.raw(image, score_threshold)
        canvas = Visualizer(image, metadata=metadata, instance_mode=ColorMode.IMAGE)
        drawn = canvas.draw_instance_predictions(instances).get_image()
        path = folder / f"val_{record['image_id']:04d}.png"
        Image.fromarray(drawn).save(path)
        paths.append(path)
    return paths


def evaluate_folder(folder: str | Path, dataset, device: str = "cpu") -> dict[str, Any]:
    """`python -m trainer evaluate` for a detectron2 model folder: COCO AP on `dataset` (images cached as PNG in a
    temporary folder so detectron2's own loader and COCOEvaluator run unchanged)."""

    segmenter = load_folder(folder, device)
    if list(dataset.class_names) != list(segmenter.class_names):
        raise ValueError(f"{dataset.root or 'dataset'}: classes {list(dataset.class_names)} differ from the "
                         f"model's {segmenter.class_names}; class ids would not line up")
    with tempfile.TemporaryDirectory(prefix="segkit-eval-") as tmp:
        dicts = dataset_dicts(dataset, Path(tmp) / "images", desc="caching images")
        name = register("segkit_evaluate", dicts, segmenter.class_names)
        return coco_metrics(segmenter.cfg, segmenter.model, name, Path(tmp) / "eval")
