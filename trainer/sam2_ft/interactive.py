"""Interactive evaluation: the standard click simulator of interactive segmentation (RITM, SAM, sam2).

Per object, against its ground truth:
- click 1 goes at the object's most interior point; its mask is the candidate with the highest predicted IoU of the
  multimask output, as SAM is used;
- each further click goes at the most interior point of the larger error (the error pixel farthest from the error's
  edge, sam2's `sample_one_point_from_error_center`): positive where the mask misses the object, negative where it
  spills over; every point so far is given again, with the previous mask's logits as the mask prompt, for a
  single-mask output.

Reported: mIoU after 1, 2, 3, 5 and 10 clicks (`miou_click_K`), and NoC@85 / NoC@90 (`noc_85`, `noc_90`): the
clicks an object needs to reach that IoU, MAX_CLICKS when it never does (capped, as the papers report it).
"""

from __future__ import annotations

import numpy as np
import torch
from sam2.modeling.sam2_utils import sample_one_point_from_error_center

REPORTED_CLICKS = (1, 2, 3, 5, 10)
NOC_THRESHOLDS = (0.85, 0.90)
MAX_CLICKS = 20


def click_metric_names(max_clicks: int = MAX_CLICKS) -> tuple[str, ...]:
    """The metric keys an evaluation with `max_clicks` clicks reports."""
    if max_clicks <= 0:
        return ()
    return (*(f"miou_click_{k}" for k in REPORTED_CLICKS if k <= max_clicks),
            *(f"noc_{round(t * 100)}" for t in NOC_THRESHOLDS))


def next_clicks(truth: np.ndarray, pred: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """One click per object (truth, pred: N x H x W bool; pred None before the first click): N x 1 x 2 (x, y) pixel
    coordinates and N x 1 labels (1 positive, 0 negative), by sam2's error-centre rule. Each object's errors are
    measured inside the box around its truth and prediction (plus one pixel), not over the whole image."""
    coords = np.zeros((len(truth), 1, 2), dtype=np.float32)
    labels = np.ones((len(truth), 1), dtype=np.int32)
    for i, gt in enumerate(truth):
        mask = gt if pred is None else gt | pred[i]
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows) == 0:  # an empty object and an empty prediction: nothing to correct
            continue
        y0, y1 = max(rows[0] - 1, 0), min(rows[-1] + 2, gt.shape[0])
        x0, x1 = max(cols[0] - 1, 0), min(cols[-1] + 2, gt.shape[1])
        crop_gt = torch.from_numpy(np.ascontiguousarray(gt[y0:y1, x0:x1]))[None, None]
        crop_pred = None if pred is None else torch.from_numpy(np.ascontiguousarray(pred[i, y0:y1, x0:x1]))[None, None]
        point, label = sample_one_point_from_error_center(crop_gt, crop_pred)
        coords[i, 0] = point[0, 0].numpy() + (x0, y0)
        labels[i, 0] = int(label[0, 0])
    return coords, labels


def simulate(predictor, truth: np.ndarray, max_clicks: int = MAX_CLICKS) -> np.ndarray:
    """IoU of each object after each click: N x max_clicks. `predictor` (a SAM2ImagePredictor) already holds the
    image; `truth` is N x H x W bool. Stops early, repeating the last IoU, once every object has reached the top NoC
    threshold and the last reported click is done: later clicks can change neither figure."""
    n = len(truth)
    out = np.zeros((n, max_clicks))
    coords, labels = next_clicks(truth, None)
    masks, scores, logits = predictor.predict(point_coords=coords, point_labels=labels, multimask_output=True,
                                              normalize_coords=True)
    masks, scores, logits = _per_object(masks, n), scores.reshape(n, -1), _per_object(logits, n)
    best = scores.argmax(1)
    pred, low_res = masks[np.arange(n), best] > 0, logits[np.arange(n), best][:, None]
    out[:, 0] = _iou(truth, pred)
    last_reported = max((k for k in REPORTED_CLICKS if k <= max_clicks), default=1)
    for click in range(1, max_clicks):
        if click >= last_reported and (out[:, :click] >= max(NOC_THRESHOLDS)).any(1).all():
            out[:, click:] = out[:, click - 1:click]
            break
        more, more_labels = next_clicks(truth, pred)
        coords, labels = np.concatenate([coords, more], 1), np.concatenate([labels, more_labels], 1)
        masks, _, logits = predictor.predict(point_coords=coords, point_labels=labels, mask_input=low_res,
                                             multimask_output=False, normalize_coords=True)
        pred, low_res = _per_object(masks, n)[:, 0] > 0, _per_object(logits, n)
        out[:, click] = _iou(truth, pred)
    return out


def summarise(ious: np.ndarray) -> dict[str, float]:
    """miou_click_K and noc_T from the N x clicks IoUs of `simulate` (an empty N gives zeros)."""
    n, clicks = ious.shape if ious.ndim == 2 else (0, MAX_CLICKS)
    metrics = {f"miou_click_{k}": float(ious[:, k - 1].mean()) if n else 0.0 for k in REPORTED_CLICKS if k <= clicks}
    for threshold in NOC_THRESHOLDS:
        reached = ious >= threshold
        needed = np.where(reached.any(1), reached.argmax(1) + 1, clicks)
        metrics[f"noc_{round(threshold * 100)}"] = float(needed.mean()) if n else 0.0
    return metrics


def _per_object(array: np.ndarray, n: int) -> np.ndarray:
    """The predictor squeezes a single object's batch axis: always N x C x H x W."""
    return array.reshape(n, -1, *array.shape[-2:])


def _iou(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    inter = (truth & pred).sum((1, 2))
    return inter / np.maximum((truth | pred).sum((1, 2)), 1)
