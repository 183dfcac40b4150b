"""Prompts sampled from ground-truth masks, in model-input pixel coordinates (0..image_size).

All masks here are N x 1 x H x W bool tensors (one row per object). Randomness comes from an explicit
torch.Generator, so a sample's prompts depend only on (seed, step, sample index) — not on the process rank
or on what ran before — which makes multi-process and resumed runs reproduce single uninterrupted ones.

Point labels follow sam2: 1 positive, 0 negative, 2/3 box corners, -1 padding ("not a point").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sam2.modeling.sam2_utils import mask_to_box, sample_one_point_from_error_center

from trainer.data.instances import interior_point


@dataclass
class Prompts:
    coords: torch.Tensor  # N x P x 2 float (x, y)
    labels: torch.Tensor  # N x P int
    mask_input: torch.Tensor | None = None  # N x 1 x H/4 x W/4 logits
    multimask: bool = False  # one ambiguous point: predict 3 masks and train the best

    def add_points(self, coords: torch.Tensor, labels: torch.Tensor) -> "Prompts":
        return Prompts(torch.cat([self.coords, coords], 1), torch.cat([self.labels, labels], 1), self.mask_input,
                       multimask=False)

    def to(self, device: torch.device) -> "Prompts":
        """On `device`; non-blocking, so a GPU step does not wait here for the work queued before it."""
        mask = None if self.mask_input is None else self.mask_input.to(device, non_blocking=True)
        return Prompts(self.coords.to(device, non_blocking=True), self.labels.to(device, non_blocking=True), mask,
                       self.multimask)

    def take(self, rows: torch.Tensor) -> "Prompts":
        """These rows (objects), e.g. repeated to pad an image's objects to a fixed count."""
        mask = None if self.mask_input is None else self.mask_input[rows]
        return Prompts(self.coords[rows], self.labels[rows], mask, self.multimask)

    @staticmethod
    def cat(parts: list["Prompts"]) -> "Prompts":
        masks = [p.mask_input for p in parts]
        return Prompts(torch.cat([p.coords for p in parts]), torch.cat([p.labels for p in parts]),
                       torch.cat(masks) if masks[0] is not None else None, parts[0].multimask)


def _pick(region: torch.Tensor, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` uniformly random pixels of each row's region (N x 1 x H x W) -> (N x count x 2 xy, N x count valid).

    Inverse-CDF sampling: one cumulative sum per row and `count` random numbers from `generator` (on its own
    device), not a random number per pixel — at 1024² that was most of a GPU step's time, spent on the host."""
    n, _, h, w = region.shape
    cum = region.reshape(n, h * w).cumsum(1, dtype=torch.int32)
    total = cum[:, -1:]
    u = torch.rand(n, count, generator=generator, device=generator.device).to(region.device, non_blocking=True)
    rank = torch.minimum((u * total).long(), (total - 1).clamp(min=0).long())  # 0 .. total-1: which pixel
    index = torch.searchsorted(cum, (rank + 1).to(cum.dtype)).clamp(max=h * w - 1)
    xy = torch.stack([index % w, index // w], dim=2).float()
    return xy, (total > 0).expand(n, count)


def sample_points(masks: torch.Tensor, n_pos: int, n_neg: int, generator: torch.Generator) -> Prompts:
    """n_pos points inside each mask (label 1) and n_neg outside (label 0); padding (-1) where a region is empty."""
    pos, pos_ok = _pick(masks, n_pos, generator)
    neg, neg_ok = _pick(~masks, n_neg, generator)
    labels = torch.cat([torch.where(pos_ok, 1, -1), torch.where(neg_ok, 0, -1)], dim=1).int()
    return Prompts(torch.cat([pos, neg], 1), labels, multimask=(n_pos + n_neg == 1))


def center_points(masks: torch.Tensor) -> Prompts:
    """The most interior pixel of each mask (deterministic; for evaluation), via sam2's RITM-style sampler."""
    xy = [interior_point(mask) for mask in masks[:, 0].cpu().numpy()]
    coords = torch.tensor(xy, dtype=torch.float, device=masks.device).view(-1, 1, 2)
    return Prompts(coords, torch.ones(len(xy), 1, dtype=torch.int, device=masks.device), multimask=True)


def boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes N x 4 (x0, y0, x1, y1), sam2's own mask_to_box."""
    return mask_to_box(masks).view(-1, 4).float()


def sample_box(masks: torch.Tensor, generator: torch.Generator, jitter: float = 0.1, max_px: float = 20.0) -> Prompts:
    """The mask's box with each corner moved by up to `jitter` x box size (at most max_px), as SAM trains."""
    box = boxes(masks)
    size = (box[:, 2:] - box[:, :2]).repeat(1, 2)
    bound = torch.clamp(size * jitter, max=max_px)
    noise = (torch.rand(box.shape, generator=generator, device=box.device) * 2 - 1) * bound
    h, w = masks.shape[-2:]
    box = box + noise
    box = torch.stack([box[:, 0].clamp(0, w - 1), box[:, 1].clamp(0, h - 1),
                       box[:, 2].clamp(0, w - 1), box[:, 3].clamp(0, h - 1)], dim=1)
    return box_prompt(box)


def box_prompt(box: torch.Tensor) -> Prompts:
    """N x 4 boxes as the two labelled corner points the prompt encoder takes."""
    labels = torch.tensor([[2, 3]], dtype=torch.int, device=box.device).expand(len(box), 2)
    return Prompts(box.view(-1, 2, 2), labels.contiguous())


def corrective_click(gt: torch.Tensor, pred: torch.Tensor, generator: torch.Generator,
                     centre: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per object in the error region of `pred`, by sam2's training rule (sample_random_points_from_errors):
    a pixel drawn uniformly from the errors, positive if the object was missed there, negative if it was wrongly
    taken; where the prediction is perfect, a negative click in the background. Drawn with `_pick`, on the masks'
    own device, from `generator`.

    With `centre` > 0, that share of the objects (drawn from `generator` too) is clicked by the interactive
    evaluation's rule instead: the most interior pixel of the larger error (sam2's sample_one_point_from_error_center,
    the RITM clicker). centre 0 draws nothing more, so a run without it samples exactly as before."""
    false_pos, false_neg = pred & ~gt, gt & ~pred
    errors = false_pos | false_neg
    perfect = ~errors.flatten(1).any(1)
    xy, _ = _pick(torch.where(perfect.view(-1, 1, 1, 1), ~gt, errors), 1, generator)
    x, y = xy[:, 0, 0].long(), xy[:, 0, 1].long()
    labels = false_neg[torch.arange(len(gt), device=gt.device), 0, y, x].to(torch.int32).view(-1, 1)
    if centre > 0:
        at_centre = (torch.rand(len(gt), generator=generator, device=generator.device) < centre).to(gt.device)
        at_centre &= ~perfect  # a perfect mask has no error centre: its click stays in the background
        if at_centre.any():
            points, centre_labels = sample_one_point_from_error_center(gt[at_centre], pred[at_centre])
            xy[at_centre], labels[at_centre] = points.to(xy), centre_labels.to(labels)
    return xy, labels


def sample_prompts(kind: str, masks: torch.Tensor, generator: torch.Generator, n_pos: int = 2,
                   n_neg: int = 1) -> Prompts:
    """One prompt of `kind` per object: point | points | box | mask.

    "mask" starts as one point here; the objective then feeds the model's own prediction back as the mask prompt
    (as SAM and sam2 train it). A mask prompt made from the ground truth would let the model learn to copy it."""
    if kind in ("point", "mask"):
        return sample_points(masks, 1, 0, generator)
    if kind == "points":
        return sample_points(masks, n_pos, n_neg, generator)
    if kind == "box":
        return sample_box(masks, generator)
    raise ValueError(f"unknown prompt type {kind!r}")
