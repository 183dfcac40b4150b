"""The loss of one micro-batch: encoder (or its cached output) -> head -> cross-entropy + Dice against label maps.

An nn.Module so DistributedDataParallel can wrap it (DDP only syncs what runs through its forward).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss

from trainer.engine.feature_cache import FeatureCache
from trainer.sam2_model.forward import Encoded, encode_images, preprocess
from trainer.semantic.batches import Item
from trainer.semantic.model import SamUNet


class SemanticLoss(torch.nn.Module):
    """ce_weight x cross-entropy (optionally class-weighted) + dice_weight x smp's multiclass Dice."""

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, class_weights: torch.Tensor | None = None):
        super().__init__()

        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.dice = DiceLoss("multiclass", from_logits=True)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over images of each image's loss, so any split of a batch over processes averages alike."""
        per_image = []
        for one, truth in zip(logits.float(), labels):
            loss = one.new_zeros(())
            if self.ce_weight:
                loss = loss + self.ce_weight * F.cross_entropy(one[None], truth[None], weight=self.class_weights)
            if self.dice_weight:  # smp: a class absent from this image adds nothing
                loss = loss + self.dice_weight * self.dice(one[None], truth[None])
            per_image.append(loss)
        return torch.stack(per_image).mean()


class SemanticObjective(torch.nn.Module):
    def __init__(self, model: SamUNet, loss: SemanticLoss, cache: FeatureCache | None = None):
        super().__init__()
        self.model = model
        self.loss = loss
        self.cache = cache  # only with a frozen image encoder

    def encode(self, items: list[Item]) -> Encoded:
        """The encoder's FPN levels (cached when it is frozen; its positional encodings are not needed here)."""
        device = next(self.model.parameters()).device

        def run(rows: list[int]) -> Encoded:
            batch = preprocess(self.model, [items[r].image for r in rows]).to(device)
            return {"backbone_fpn": encode_images(self.model, batch)["backbone_fpn"]}

        keys = [it.cache_key for it in items]
        if self.cache is not None and None not in keys:
            return self.cache.get_batch(keys, run)
        trains_encoder = any(p.requires_grad for p in self.model.image_encoder.parameters())
        with contextlib.nullcontext() if trains_encoder else torch.no_grad():
            return run(list(range(len(items))))

    def forward(self, items: list[Item]) -> torch.Tensor:
        logits = self.model.decode(self.encode(items))
        labels = torch.stack([it.labels for it in items]).to(logits.device)
        return self.loss(logits, labels)
