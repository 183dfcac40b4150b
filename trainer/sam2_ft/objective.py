"""The loss of one micro-batch: several images, several objects each, prompts sampled from their masks.

Fixed shapes (`pad_to`: on a GPU, or with --compile): every image's objects are padded to the same bucketed count
K (repeats of its own objects, weight 0 in the loss), so one decoder call serves the micro-batch and compiled code
sees a few shapes instead of one per object count. Without (a CPU's eager step: a padded object costs what a real
one does there), one decoder call when the images have as many objects each, one per image otherwise. Nothing here reads a
value back to the host (no sync in a GPU step).

Wrapped as an nn.Module so DistributedDataParallel can wrap it (DDP only syncs what runs through its forward).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from trainer.engine.feature_cache import FeatureCache
from trainer.engine.images import Item
from trainer.sam2_ft.losses import downsample_targets, loss_size, mask_loss
from trainer.sam2_ft.prompts import Prompts, corrective_click, sample_prompts
from trainer.sam2_model.forward import Features, decode, encode_images, image_features, image_rows, preprocess


# A checkpointed click recomputes at most this many objects of one image at once in backward: at 1024 px, 4 instead of
# an image's 8 took ~350 MiB off the default step's peak, same loss and gradients (bench/README.md, issue 31).
RECOMPUTED_OBJECTS = 4


def object_slots(most: int, cap: int | None) -> int:
    """Objects per image after padding: the micro-batch's largest count, or, with `cap` (compiled steps), the next
    power of two up to cap, so compiled code sees log2(cap) + 1 shapes at most."""
    return most if cap is None else min(cap, 1 << (most - 1).bit_length())


def object_groups(layout: list[int], most: int = RECOMPUTED_OBJECTS) -> list[tuple[int, slice]]:
    """(image, rows) of each group of a checkpointed click: every image's objects (image-major rows, `layout`) split
    into as few near-equal groups of at most `most` as there can be."""
    groups = []
    for image, rows in enumerate(image_rows(layout)):
        count = rows.stop - rows.start
        bounds = np.linspace(rows.start, rows.stop, -(-count // most) + 1).round().astype(int).tolist()
        groups += [(image, slice(a, b)) for a, b in zip(bounds, bounds[1:])]
    return groups


def click_loss(model: torch.nn.Module, loss: str, feats: Features, coords: torch.Tensor, labels: torch.Tensor,
               mask_input: torch.Tensor | None, multimask: bool,
               target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One decoder pass: the per-object loss, and the logits / IoUs (detached) the next click is drawn from. The
    part of the step that torch.compile takes (--compile)."""
    low_res, iou = decode(model, feats, coords, labels, mask_input, multimask)
    return mask_loss(loss, low_res, iou, target), low_res.detach(), iou.detach()


class Sam2Objective(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, loss: str, correction_clicks: int = 0,
                 cache: FeatureCache | None = None, checkpoint_clicks: bool = False, compile: str | None = None,
                 pad_to: int | None = None, centre_clicks: float = 0.0):
        super().__init__()
        self.model = model
        self.loss = loss
        self.correction_clicks = correction_clicks
        self.centre_clicks = centre_clicks  # share of corrective clicks at the error's centre (prompts.corrective_click)
        self.cache = cache  # only with a frozen image encoder
        # Each click's decoder activations are kept for the backward pass: with 8 objects x 7 clicks at 1024 px that
        # is ~10 GB. Checkpointed, a click keeps only its inputs and recomputes its decoder pass in backward.
        self.checkpoint_clicks = checkpoint_clicks
        # `compile`: a torch.compile backend ("inductor" for --compile). Static shapes (dynamic=False), objects
        # bucketed: it compiles once per bucket, prompt type and click (a click adds a point and a mask input)
        self.click_loss = torch.compile(click_loss, backend=compile, dynamic=False) if compile else click_loss
        self.bucket = pad_to  # objects per image padded to object_slots(.., pad_to); None: not padded

    def encode(self, items: list[Item]):
        device = next(self.model.parameters()).device
        run = lambda rows: encode_images(self.model, preprocess(  # noqa: E731 - preprocessed on the host
            self.model, [items[r].image for r in rows]).to(device, non_blocking=True))
        keys = [it.cache_key for it in items]
        if self.cache is not None and None not in keys:
            return self.cache.get_batch(keys, run)
        return run(list(range(len(items))))

    def forward(self, items: list[Item], kind: str) -> torch.Tensor:
        """Mean over images of the mean loss of each image's objects (so any split over processes averages alike)."""
        device = next(self.model.parameters()).device
        counts = [len(it.masks) for it in items]
        layout = counts if self.bucket is None else [object_slots(max(counts), self.bucket)] * len(items)
        pads = [torch.arange(n) % count for n, count in zip(layout, counts)]  # row j: the image's object j mod count
        feats = image_features(self.model, self.encode(items)).for_objects(layout)
        gt = torch.cat([it.masks[pad] for it, pad in zip(items, pads)]).to(device, non_blocking=True)
        # each image's prompts drawn for its own objects only, then padded: the same draws as without padding
        prompts = Prompts.cat([sample_prompts(kind, it.masks, it.generator).take(pad)
                               for it, pad in zip(items, pads)]).to(device)
        # mean over each image's objects, then over images; padding weighs 0
        weight = torch.cat([(pad == torch.arange(len(pad))) / count / len(items) for pad, count in zip(pads, counts)])
        weight = weight.to(device, non_blocking=True)
        size = loss_size(self.model.image_size)
        target = downsample_targets(gt, (size, size))  # once, shared by every click

        if kind == "mask":  # the model's own prediction from the point comes back as the mask prompt (SAM's way)
            with torch.no_grad():
                low_res, iou = decode(self.model, feats, prompts.coords, prompts.labels, None, True)
            prompts.mask_input, prompts.multimask = best_mask(low_res, iou), False

        per_object = []
        for click in range(self.correction_clicks + 1):
            if click:  # next click from the error region of the previous prediction, which is also the mask prompt
                best = best_mask(low_res, iou)
                prompts = prompts.add_points(*self._corrective_clicks(items, pads, gt, best, self.centre_clicks))
                prompts.mask_input = best
            loss, low_res, iou = self._click(feats, prompts, target, layout)
            per_object.append(loss)

        return (torch.stack(per_object).mean(0) * weight).sum()  # padded objects weigh 0: no loss, no gradient

    def _click(self, feats: Features, prompts: Prompts, target: torch.Tensor,
               layout: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder pass of every object: loss, logits, IoUs. Checkpointed (a large step) it runs in groups of at
        most RECOMPUTED_OBJECTS objects of one image, so backward recomputes one group's pass at a time rather than
        the micro-batch's."""
        def args(rows: slice, feats: Features) -> tuple:
            mask_input = None if prompts.mask_input is None else prompts.mask_input[rows]
            return (self.model, self.loss, feats, prompts.coords[rows], prompts.labels[rows], mask_input,
                    prompts.multimask, target[rows])

        if not self.checkpoint_clicks:
            return self.click_loss(*args(slice(None), feats))
        parts = [checkpoint(self.click_loss, *args(rows, Features(*feats.image(i), per_image=[rows.stop - rows.start])),
                            use_reentrant=False) for i, rows in object_groups(layout)]
        return tuple(torch.cat(values) for values in zip(*parts))

    @staticmethod
    def _corrective_clicks(items: list[Item], pads: list[torch.Tensor], gt: torch.Tensor,
                           best: torch.Tensor, centre: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """One click per object from its own image's generator (drawn for the real objects, then padded alike)."""
        pred = F.interpolate(best.float(), size=gt.shape[-2:], mode="bilinear") > 0
        xy, labels, start = [], [], 0
        for it, pad in zip(items, pads):
            count = len(it.masks)
            click, label = corrective_click(gt[start:start + count], pred[start:start + count], it.generator, centre)
            rows = pad.to(gt.device, non_blocking=True)
            xy.append(click[rows])
            labels.append(label[rows])
            start += len(pad)
        return torch.cat(xy), torch.cat(labels)


def best_mask(low_res: torch.Tensor, iou: torch.Tensor) -> torch.Tensor:
    """Each object's highest-scoring candidate (N x 1 x h x w logits), detached: what a user would see and refine."""
    index = iou.argmax(1)[:, None, None, None].expand(-1, 1, *low_res.shape[-2:])
    return low_res.gather(1, index).detach().float().clamp(-32, 32)
