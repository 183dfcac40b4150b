"""J&F, the DAVIS measure of video object segmentation: region similarity J (IoU) and boundary F-measure.

As the DAVIS 2017 evaluation (davis2017-evaluation, also vos-benchmark) computes them, per object and frame:
    J = |pred & gt| / |pred | gt|                      (1 when both are empty)
    F = 2PR / (P + R) of the 1-pixel boundaries, each matched within a disk of radius ceil(0.008 x image diagonal)
        (P = 1, R = 1 when both boundaries are empty; P = 0 or R = 0 when only one is)
then averaged over frames (the first, given, frame and the last frame excluded, as DAVIS does) and objects.
vos-benchmark was not used: it declares opencv-python, which conflicts with the stack's opencv-python-headless, so
`pip check` (setup.sh's last step) would fail; this is its formula, tested against hand-computed values.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation
from skimage.morphology import disk

BOUNDARY = 0.008


def boundary(mask: np.ndarray) -> np.ndarray:
    """DAVIS's seg2bmap at the mask's own size: pixels whose right, lower or lower-right neighbour differs."""
    m = mask.astype(bool)
    east, south, south_east = np.zeros_like(m), np.zeros_like(m), np.zeros_like(m)
    east[:, :-1], south[:-1, :], south_east[:-1, :-1] = m[:, 1:], m[1:, :], m[1:, 1:]
    b = (m ^ east) | (m ^ south) | (m ^ south_east)
    b[-1, :] = m[-1, :] ^ east[-1, :]
    b[:, -1] = m[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def region_j(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound: float = BOUNDARY) -> float:
    radius = int(np.ceil(bound * np.linalg.norm(pred.shape)))
    pb, gb = boundary(pred), boundary(gt)
    n_p, n_g = int(pb.sum()), int(gb.sum())
    if n_p == 0 or n_g == 0:
        return 1.0 if n_p == n_g else 0.0
    kernel = disk(radius).astype(bool)
    precision = (pb & binary_dilation(gb, kernel)).sum() / n_p
    recall = (gb & binary_dilation(pb, kernel)).sum() / n_g
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def evaluated_frames(num_frames: int) -> range:
    """DAVIS leaves out the first frame (it holds the given mask) and the last one."""
    return range(1, num_frames - 1) if num_frames > 2 else range(1, num_frames)


def clip_jf(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-object J and F (arrays of N) of predictions T x N x H x W against ground truth of the same shape."""
    frames = evaluated_frames(gt.shape[0])
    j = np.array([[region_j(pred[t, n], gt[t, n]) for t in frames] for n in range(gt.shape[1])])
    f = np.array([[boundary_f(pred[t, n], gt[t, n]) for t in frames] for n in range(gt.shape[1])])
    return j.mean(1), f.mean(1)
