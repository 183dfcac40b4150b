"""The loss of one micro-batch: several images, several objects each, prompts sampled from their masks.

Wrapped as an nn.Module so DistributedDataParallel can wrap it (DDP only syncs what runs through its forward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from trainer.sam2_ft.batches import Item
from trainer.sam2_ft.feature_cache import FeatureCache
from trainer.sam2_ft.forward import decode, encode_images, image_features, preprocess
from trainer.sam2_ft.losses import downsample_targets, loss_size, mask_loss
from trainer.sam2_ft.prompts import Prompts, corrective_click, sample_prompts


class Sam2Objective(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, loss: str, correction_clicks: int = 0,
                 cache: FeatureCache | None = None, checkpoint_clicks: bool = False):
        super().__init__()
        self.model = model
        self.loss = loss
        self.correction_clicks = correction_clicks
        self.cache = cache  # only with a frozen image encoder
        # Each click's decoder activations are kept for the backward pass: with 8 objects x 7 clicks at 1024 px that
        # is ~10 GB. Checkpointed, a click keeps only its inputs and recomputes its decoder pass in backward.
        self.checkpoint_clicks = checkpoint_clicks

    def encode(self, items: list[Item]):
        device = next(self.model.parameters()).device
        run = lambda rows: encode_images(self.model, preprocess(self.model, [items[r].image for r in rows]).to(device))
        keys = [it.cache_key for it in items]
        if self.cache is not None and None not in keys:
            return self.cache.get_batch(keys, run)
        return run(list(range(len(items))))

    def _click_loss(self, feats, prompts: Prompts, target: torch.Tensor):
        """One decoder pass: the per-object loss, and the logits / IoUs (detached) the next click is drawn from."""
        low_res, iou = decode(self.model, feats, prompts.coords, prompts.labels, prompts.mask_input,
                              prompts.multimask)
        return mask_loss(self.loss, low_res, iou, target), low_res.detach(), iou.detach()

    def forward(self, items: list[Item], kind: str) -> torch.Tensor:
        """Mean over images of the mean loss of each image's objects (so any split over processes averages alike)."""
        device = next(self.model.parameters()).device
        feats = image_features(self.model, self.encode(items))
        owner = torch.cat([torch.full((len(it.masks),), i) for i, it in enumerate(items)]).to(device)
        feats = feats.select(owner)
        gt = torch.cat([it.masks for it in items]).to(device)
        prompts = Prompts.cat([sample_prompts(kind, it.masks, it.generator) for it in items]).to(device)
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
                pred = F.interpolate(best.float(), size=gt.shape[-2:], mode="bilinear") > 0
                clicks = [corrective_click(gt[owner == i], pred[owner == i], it.generator)
                          for i, it in enumerate(items)]
                prompts = prompts.add_points(torch.cat([c for c, _ in clicks]).to(device),
                                             torch.cat([lab for _, lab in clicks]).to(device))
                prompts.mask_input = best
            scored = lambda p=prompts: self._click_loss(feats, p, target)  # noqa: E731 - binds this click's prompts
            loss, low_res, iou = checkpoint(scored, use_reentrant=False) if self.checkpoint_clicks else scored()
            per_object.append(loss)

        per_object = torch.stack(per_object).mean(0)
        per_image = torch.zeros(len(items), device=device).index_add(0, owner, per_object)
        counts = torch.bincount(owner, minlength=len(items)).clamp(min=1)
        return (per_image / counts).mean()


def best_mask(low_res: torch.Tensor, iou: torch.Tensor) -> torch.Tensor:
    """Each object's highest-scoring candidate (N x 1 x h x w logits), detached: what a user would see and refine."""
    index = iou.argmax(1)[:, None, None, None].expand(-1, 1, *low_res.shape[-2:])
    return low_res.gather(1, index).detach().float().clamp(-32, 32)
