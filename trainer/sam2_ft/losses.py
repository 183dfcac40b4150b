"""Mask losses, one per recipe. Each maps (logits N x M x H x W, predicted IoU N x M, gt N x 1 x H x W) to a
loss per object (N,). With M > 1 (multimask output for an ambiguous point) the mask terms use the best of the M
masks, as sam2's own training does.

    focal_dice_iou  sam2's training loss: 20 x focal + 1 x dice + 1 x MSE(predicted IoU, actual IoU)
    bce_iou         the LabPics tutorial: BCE + 0.05 x IoU-prediction error
    dice_ce         the HF / MONAI DiceCELoss recipe: dice + BCE (no IoU head supervision)
    dice_bce_iou    dice + BCE + MSE(predicted IoU, actual IoU): dice_ce's mask terms, sam2's IoU-head term
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss


def dice(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """1 - soft dice per mask (N x M), sam2's smoothing of 1."""
    prob = logits.sigmoid().flatten(2)
    target = gt.flatten(2)
    return 1 - (2 * (prob * target).sum(-1) + 1) / (prob.sum(-1) + target.sum(-1) + 1)


def actual_iou(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded prediction with the ground truth, per mask (N x M); no gradient."""
    pred = (logits.detach() > 0).flatten(2)
    target = gt.flatten(2) >= 0.5  # soft (down-sampled) targets: a pixel belongs where the object covers half
    inter = (pred & target).sum(-1).float()
    union = (pred | target).sum(-1).float()
    return inter / union.clamp(min=1)


def _best(mask_loss: torch.Tensor) -> torch.Tensor:
    """Lowest mask loss over the M candidate masks (all of them get no gradient except the chosen one)."""
    return mask_loss.min(dim=1).values


def focal_dice_iou(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    target = gt.expand_as(logits)
    focal = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="none").flatten(2).mean(-1)
    mask_loss = 20 * focal + dice(logits, target)
    iou_loss = F.mse_loss(iou_pred.float(), actual_iou(logits, target), reduction="none").mean(1)  # all M supervised
    return _best(mask_loss) + iou_loss


def bce_iou(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    target = gt.expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(2).mean(-1)
    best = bce.argmin(dim=1, keepdim=True)
    score = F.mse_loss(iou_pred.float(), actual_iou(logits, target), reduction="none").gather(1, best)[:, 0]
    return bce.gather(1, best)[:, 0] + 0.05 * score


def dice_bce_iou(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    target = gt.expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(2).mean(-1)
    iou_loss = F.mse_loss(iou_pred.float(), actual_iou(logits, target), reduction="none").mean(1)
    return _best(dice(logits, target) + bce) + iou_loss


def dice_ce(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    target = gt.expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(2).mean(-1)
    return _best(dice(logits, target) + bce)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "focal_dice_iou": focal_dice_iou,
    "bce_iou": bce_iou,
    "dice_ce": dice_ce,
    "dice_bce_iou": dice_bce_iou,
}


MIN_LOSS_SIZE = 64  # below this the decoder's S/4 grid is too coarse for small objects (e.g. 32 px at 128 px input)


def loss_size(image_size: int) -> int:
    """Side of the grid the loss is taken on: the decoder's own S/4 logits (256 at sam2's 1024 px), but at least
    MIN_LOSS_SIZE (never more than the input) so small-input runs still see object edges."""
    return max(image_size // 4, min(image_size, MIN_LOSS_SIZE))


def downsample_targets(gt: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Ground-truth masks (N x 1 x H x W) as soft targets at the loss size: the share of each pixel the object
    covers (area interpolation), so thin parts still pull on their pixels."""
    if tuple(gt.shape[-2:]) == tuple(size):
        return gt.float()
    return F.interpolate(gt.float(), size=size, mode="area")


def mask_loss(name: str, low_res_logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-object loss on the loss_size grid: at sam2's 1024 px that is the decoder's own S/4 logits with the targets
    down-sampled, not 16x more logits up-sampled per object (sam2's training upsamples to full resolution).
    `gt` may already be down-sampled (downsample_targets) to share the work across clicks."""
    size = loss_size(4 * low_res_logits.shape[-1])  # the logits are always S/4
    logits = low_res_logits.float()
    if logits.shape[-1] < size:
        logits = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
    return LOSSES[name](logits, iou_pred, downsample_targets(gt, (size, size)))
