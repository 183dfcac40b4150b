"""The engine's loop (optimizer, schedule, precision, accumulation, DDP, NaN guard, checkpoints, resume) with the
semantic objective plugged in: only what is trained and what a micro-batch holds differ."""

from __future__ import annotations

from typing import ClassVar

import torch

from trainer.engine.feature_cache import run_cache
from trainer.engine.loop import Trainer
from trainer.engine.sampling import rank_slice, step_indices
from trainer.semantic.batches import LabelledImages, make_items
from trainer.semantic.objective import SemanticLoss, SemanticObjective


class SemanticTrainer(Trainer):
    name: ClassVar[str] = "semantic"

    def build_objective(self) -> tuple[list[torch.nn.Parameter], torch.nn.Module]:
        cfg, model = self.cfg, self.model
        model.requires_grad_(True)
        model.image_encoder.requires_grad_(not cfg.frozen)
        device = next(model.parameters()).device
        weights = class_weights(cfg.class_weights, self.data, model.head.num_classes)
        loss = SemanticLoss(cfg.ce_weight, cfg.dice_weight, None if weights is None else weights.to(device))
        cache = run_cache(cfg, model.image_encoder, device) if cfg.cache_features else None
        return [p for p in model.parameters() if p.requires_grad], SemanticObjective(model, loss, cache)

    def build_items(self, step: int, micro: int) -> list:
        cfg = self.cfg
        positions = step_indices(len(self.data), cfg.batch_size, step, micro, cfg.grad_accum, cfg.seed)
        return make_items(self.data, rank_slice(positions, self.world.rank, self.world.size), step, cfg.seed)



def class_weights(spec: str, data: LabelledImages, num_classes: int) -> torch.Tensor | None:
    """--class-weights: none | balanced (inverse pixel frequency, mean 1 over the classes present) | 'w0,w1,...'."""
    if spec == "none":
        return None
    if spec == "balanced":
        freq = data.pixel_frequencies()
        inverse = torch.where(freq > 0, 1 / freq.clamp(min=1e-12), torch.zeros_like(freq))
        return (inverse / inverse[freq > 0].mean()).float()
    try:
        values = [float(v) for v in spec.split(",")]
    except ValueError:
        values = []
    if len(values) != num_classes or min(values, default=-1) < 0:
        raise ValueError(f"--class-weights: expected none, balanced, or {num_classes} non-negative numbers "
                         f"(background first), got {spec!r}")
    return torch.tensor(values)
