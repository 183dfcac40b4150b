"""Mask losses, one per recipe. Each maps (logits N x M x H x W, predicted IoU N x M, gt N x 1 x H x W) to a
loss per object (N,). With M > 1 (multimask output for an ambiguous point) the mask terms use the best of the M
masks, as sam2's own training does.

    focal_dice_iou  sam2's training loss: 20 x focal + 1 x dice + 1 x MSE(predicted IoU, actual IoU)
    bce_iou         the LabPics tutorial: BCE + 0.05 x IoU-prediction error
    dice_ce         the HF / MONAI DiceCELoss recipe: dice + BCE (no IoU head supervision)
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
    target = gt.flatten(2) > 0.5
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


def dice_ce(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    target = gt.expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(2).mean(-1)
    return _best(dice(logits, target) + bce)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "focal_dice_iou": focal_dice_iou,
    "bce_iou": bce_iou,
    "dice_ce": dice_ce,
}


def mask_loss(name: str, low_res_logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-object loss at ground-truth resolution: the decoder's low-res logits are upsampled first (as sam2)."""
    logits = F.interpolate(low_res_logits.float(), size=gt.shape[-2:], mode="bilinear", align_corners=False)
    return LOSSES[name](logits, iou_pred, gt.float())
