"""The engine's loop (optimizer, schedule, precision, accumulation, DDP, NaN guard, checkpoints, resume) with the
video objective plugged in: only what is trained and what a micro-batch holds differ."""

from __future__ import annotations

from typing import ClassVar

import torch

from trainer.engine.feature_cache import run_cache
from trainer.engine.loop import Trainer
from trainer.engine.sampling import rank_slice, sample_seed, step_indices
from trainer.video.objective import VideoObjective

# --train part -> SAM2Base attributes (the image encoder is never trained here)
MODULES = {
    "memory_attention": ("memory_attention",),
    "memory_encoder": ("memory_encoder", "maskmem_tpos_enc", "no_obj_embed_spatial"),
    "mask_decoder": ("sam_mask_decoder",),
    "prompt_encoder": ("sam_prompt_encoder", "mask_downsample"),
    "obj_ptr": ("obj_ptr_proj", "obj_ptr_tpos_proj", "no_obj_ptr", "no_mem_embed", "no_mem_pos_enc"),
}


def set_trainable(model: torch.nn.Module, parts: list[str]) -> list[torch.nn.Parameter]:
    model.requires_grad_(False)
    for part in parts:
        for name in MODULES[part]:
            getattr(model, name).requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


class VideoTrainer(Trainer):
    name: ClassVar[str] = "sam2-video"

    def build_objective(self) -> tuple[list[torch.nn.Parameter], torch.nn.Module]:
        cfg = self.cfg
        params = set_trainable(self.model, cfg.trained)
        device = next(self.model.parameters()).device
        cache = run_cache(cfg, self.model.image_encoder, device) if cfg.cache_features else None
        return params, VideoObjective(self.model, cfg.weights_of_losses, cache)

    def build_items(self, step: int, micro: int) -> list:
        """This process's clips of micro-batch `micro` of `step`."""
        cfg = self.cfg
        positions = step_indices(len(self.data), cfg.batch_size, step, micro, cfg.grad_accum, cfg.seed)
        return [self.data.item(pos, step, cfg.seed, cfg.max_objects)
                for pos in rank_slice(positions, self.world.rank, self.world.size)]

    def micro_batch(self, micro: int) -> tuple[list, int]:
        """The micro-batch's clips and the seed of SAM2Train's prompt sampling."""
        return self.ahead.get(self.step, micro), sample_seed(self.cfg.seed, self.step, micro, self.world.rank)
