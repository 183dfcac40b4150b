"""Validation metrics through sam2's own inference APIs (SAM2ImagePredictor, SAM2AutomaticMaskGenerator).

With prompts, at the original image resolution (at most MAX_SIDE px on a side), each ground-truth object prompted by:
    miou_1pt  its most interior point (multimask output, the mask with the best predicted IoU, as SAM is used)
    miou_3pt  that point plus two random points inside it (seeded)
    miou_box  its tight box
Without prompts: the automatic mask generator's masks; each ground-truth mask matched to its best predicted mask:
    auto_mean_best_iou, auto_recall50 (share of objects with a match of IoU >= 0.5)
How the predicted area tracks the true one, per prompt type (a model that answers every prompt with the same
blob scores ~0 here even where its IoU looks fair):
    area_corr_1pt / _3pt / _box   Pearson correlation of log(predicted area) and log(true area) over the objects
Interactively, clicks placed by the standard simulator (interactive.py) on the previous mask's largest error:
    miou_click_1 / 2 / 3 / 5 / 10, noc_85, noc_90   mIoU after K clicks; clicks needed to reach 85 / 90 % IoU
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from trainer.data.instances import InstanceMasks, iou_matrix
from trainer.data.sample import SegmentationDataset
from trainer.engine.images import shrink
from trainer.engine.sampling import sample_seed
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.interactive import MAX_CLICKS, click_metric_names, simulate
from trainer.sam2_ft.interactive import summarise as summarise_clicks
from trainer.sam2_ft.prompts import Prompts, boxes, center_points, sample_points
from trainer.sam2_model.model import inference_mode, load_folder, make_mask_generator, make_predictor

METRICS = ("miou_1pt", "miou_3pt", "miou_box", "auto_mean_best_iou", "auto_recall50", "area_corr_1pt", "area_corr_3pt",
           "area_corr_box", *click_metric_names(MAX_CLICKS))
# Images above this side are scored at it (masks nearest): the predictions are 256² logits upsampled, so a finer
# grid adds no detail, only time (a 4096² image's 1,000 objects x 3 prompts x 16.7 M pixels).
MAX_SIDE = 2048
PIXELS_PER_CHUNK = 2**22  # objects prompted per predictor call: their image pixels (~50 MB of float masks)


def paired_iou(truth: InstanceMasks, pred: np.ndarray) -> np.ndarray:
    """IoU of truth mask i with predicted mask i (pred: N x H x W bool), from the truth's box crops."""
    out = np.zeros(len(truth))
    for i, crop in enumerate(truth.crops):
        y0, x0, y1, x1 = crop.box
        inter = int(pred[i, y0:y1, x0:x1][crop.mask].sum())
        out[i] = inter / max(int(crop.mask.sum()) + int(pred[i].sum()) - inter, 1)
    return out


def predict(predictor, gt: torch.Tensor, kind: str, seed: int = 0,
            first: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks (N x H x W bool) for N ground-truth objects prompted by `kind`, with the prompt points and labels used.
    The predictor must already hold the image (set_image). Random points are drawn per object from (seed, its index
    first + i), so the same object gets the same points however the objects are chunked."""
    n, h, w = gt.shape
    g = gt[:, None]
    coords = labels = box = None
    if kind == "1pt":
        p = center_points(g)
        coords, labels = p.coords, p.labels
    elif kind == "3pt":
        centre, more = center_points(g), _random_points(g, 2, 0, seed, first)
        coords, labels = torch.cat([centre.coords, more.coords], 1), torch.cat([centre.labels, more.labels], 1)
    elif kind == "pos_neg":  # overlays: show both point colours
        p = _random_points(g, 2, 1, seed, first)
        coords, labels = p.coords, p.labels
    elif kind == "box":
        box = boxes(g).numpy()
    else:
        raise ValueError(f"unknown evaluation prompt {kind!r}")
    masks, scores, _ = predictor.predict(
        point_coords=None if coords is None else coords.numpy(), point_labels=None if labels is None else labels.numpy(),
        box=box, multimask_output=(kind == "1pt"), normalize_coords=True)
    masks, scores = masks.reshape(n, -1, h, w), scores.reshape(n, -1)
    best = masks[np.arange(n), scores.argmax(1)] > 0
    pts = (np.zeros((n, 0, 2)), np.zeros((n, 0))) if coords is None else (coords.numpy(), labels.numpy())
    return best, *pts


def _random_points(masks: torch.Tensor, n_pos: int, n_neg: int, seed: int, first: int) -> Prompts:
    """sample_points for each object with its own generator, seeded by (seed, first + i)."""
    each = [sample_points(masks[i:i + 1], n_pos, n_neg, torch.Generator().manual_seed(sample_seed(seed, first + i)))
            for i in range(len(masks))]
    return Prompts(torch.cat([p.coords for p in each]), torch.cat([p.labels for p in each]))


def evaluate(model: torch.nn.Module, dataset: SegmentationDataset, max_images: int = 0, points_per_side: int = 16,
             seed: int = 0, progress: bool = True, thresholds: dict[str, float] | None = None,
             clicks: int = MAX_CLICKS) -> dict:
    """Metrics over (the first max_images of) `dataset`; per class as well when it has class names.
    `thresholds`: the automatic mask generator's pred_iou_thresh / stability_score_thresh (sam2's defaults if None).
    points_per_side <= 0 skips the prompt-free metrics (their auto_* values are then 0); clicks <= 0 skips the
    interactive ones (NoC is capped at `clicks`)."""
    n_images = len(dataset) if max_images <= 0 else min(max_images, len(dataset))
    ious: dict[str, list[float]] = {k: [] for k in ("miou_1pt", "miou_3pt", "miou_box", "auto")}
    areas: dict[str, list[tuple[int, int]]] = {k: [] for k in ("1pt", "3pt", "box")}  # (true, predicted) pixels
    clicked: list[np.ndarray] = []  # per chunk: objects x clicks IoUs of the interactive simulation
    classes: list[int] = []
    with inference_mode(model):
        predictor = make_predictor(model)
        generator = make_mask_generator(model, points_per_side=points_per_side, points_per_batch=64,
                                        output_mode="coco_rle", **(thresholds or {})) if points_per_side > 0 else None
        for index in tqdm(range(n_images), desc="evaluating", disable=not progress, leave=False):
            sample = dataset[index]
            image, truth = shrink(sample.image, sample.masks, MAX_SIDE)
            keep = truth.areas > 0
            truth, class_ids = truth[keep], sample.class_ids[keep]
            if len(truth) == 0:
                continue
            predictor.set_image(image)
            # objects in chunks: the predictor's float masks of every object at once would be N x 3 x H x W
            chunk = max(1, PIXELS_PER_CHUNK // (image.shape[0] * image.shape[1]))
            for start in range(0, len(truth), chunk):
                part = truth[start:start + chunk]
                dense = part.dense()
                for kind in ("1pt", "3pt", "box"):
                    pred, _, _ = predict(predictor, torch.from_numpy(dense), kind, sample_seed(seed, index),
                                         first=start)
                    ious[f"miou_{kind}"].extend(paired_iou(part, pred).tolist())
                    areas[kind].extend(zip(part.areas.tolist(), pred.sum((1, 2)).tolist()))
                if clicks > 0:
                    clicked.append(simulate(predictor, dense, clicks))
            auto = [m["segmentation"] for m in generator.generate(image)] if generator else []
            matrix = iou_matrix(truth, auto)
            ious["auto"].extend((matrix.max(1) if matrix.shape[1] else np.zeros(len(truth))).tolist())
            classes.extend(class_ids.tolist())
    clicked_all = np.concatenate(clicked) if clicked else np.zeros((0, max(clicks, 0)))
    metrics = {**_summarise(ious, np.ones(len(classes), bool)),
               **(summarise_clicks(clicked_all) if clicks > 0 else {})}
    metrics.update({f"area_corr_{kind}": area_correlation(pairs) for kind, pairs in areas.items()})
    metrics["num_objects"] = len(classes)
    names = list(getattr(dataset, "class_names", []) or [])
    if names:
        cls = np.array(classes)
        metrics["per_class"] = {name: {**_summarise(ious, cls == c),
                                       **(summarise_clicks(clicked_all[cls == c]) if clicks > 0 else {})}
                                for c, name in enumerate(names) if (cls == c).any()}
    return metrics


def area_correlation(pairs: list[tuple[int, int]]) -> float:
    """Pearson correlation of log areas (true, predicted); 0 when either side does not vary."""
    if len(pairs) < 2:
        return 0.0
    logs = np.log1p(np.asarray(pairs, dtype=np.float64))
    if logs[:, 0].std() == 0 or logs[:, 1].std() == 0:
        return 0.0
    return float(np.corrcoef(logs[:, 0], logs[:, 1])[0, 1])


def _summarise(ious: dict[str, list[float]], select: np.ndarray) -> dict[str, float]:
    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else 0.0

    arrays = {k: np.asarray(v, dtype=np.float64)[select] if len(v) else np.zeros(0) for k, v in ious.items()}
    return {"miou_1pt": mean(arrays["miou_1pt"]), "miou_3pt": mean(arrays["miou_3pt"]),
            "miou_box": mean(arrays["miou_box"]), "auto_mean_best_iou": mean(arrays["auto"]),
            "auto_recall50": mean((arrays["auto"] >= 0.5).astype(np.float64))}


def evaluate_folder(folder: str | Path, dataset: SegmentationDataset, device: str = "cpu") -> dict:
    """`python -m trainer evaluate` for a SAM2 model folder: every image of `dataset`, the evaluation settings of
    the run that made the model when its config.yaml is there (else the defaults)."""
    cfg = Sam2TrainConfig()
    saved = Path(folder) / "config.yaml"
    if saved.is_file():
        cfg = Sam2TrainConfig.from_dict(yaml.safe_load(saved.read_text()) or {})
    model, _ = load_folder(folder, device)
    return evaluate(model, dataset, 0, cfg.auto_points_per_side, cfg.seed, cfg.progress, cfg.auto_thresholds,
                    cfg.eval_clicks)
