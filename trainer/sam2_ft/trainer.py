"""The SAM2 trainer on the engine's loop: what trains (parts, LoRA), the objective (prompts, corrective clicks,
losses), a micro-batch (images, objects, views, one prompt type), and the LoRA adapters in its checkpoints."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from trainer.engine.feature_cache import run_cache
from trainer.engine.loop import Trainer
from trainer.engine.sampling import rank_slice, sample_seed, step_indices
from trainer.sam2_ft import lora
from trainer.engine.images import make_items
from trainer.sam2_ft.config import Sam2Recipe
from trainer.sam2_ft.objective import Sam2Objective

# Each click's decoder pass is recomputed in backward once a micro-batch holds more object-passes than this, counted
# at 1024² (~60 MB of activations each): the default 1024-px recipe (2 images × 8 objects × 7 passes = 112) peaked at
# 11.2 GB without it and 4.3 GB with it, while a small step (the Space's 2 × 4 × 3 = 24) saves 0.4 GB for 22 % time.
CHECKPOINT_ABOVE_PASSES = 32
PARTS = {"image_encoder": "image_encoder", "prompt_encoder": "sam_prompt_encoder", "mask_decoder": "sam_mask_decoder"}


def checkpoint_clicks(cfg) -> bool:
    """Whether the step is large: each click's decoder pass recomputed in backward (Sam2Objective) and the
    micro-batch backpropagated image by image (Sam2Trainer.split); only when the micro-batch's object-passes, scaled
    to 1024² pixels, would hold more activations than CHECKPOINT_ABOVE_PASSES of them."""
    images = max(1, cfg.batch_size // cfg.grad_accum)
    passes = images * cfg.max_objects * (cfg.correction_clicks + 1) * (cfg.image_size / 1024) ** 2
    return passes > CHECKPOINT_ABOVE_PASSES


def set_trainable(model: torch.nn.Module, frozen: list[str]) -> list[torch.nn.Parameter]:
    """Train the unfrozen parts among image encoder / prompt encoder / mask decoder; sam2's video-only modules
    (memory attention, memory encoder, object pointers) never get gradients in image training and stay fixed."""
    model.requires_grad_(False)
    for part, attr in PARTS.items():
        if part not in frozen:
            getattr(model, attr).requires_grad_(True)
    for param in lora.adapter_parameters(model):  # LoRA trains inside a frozen encoder
        param.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("--freeze: everything is frozen; nothing to train")
    return params


class Sam2Trainer(Trainer):
    cfg: Sam2Recipe  # with the loop's and the model's options (Sam2TrainConfig, FederatedConfig)
    name: ClassVar[str] = "sam2"

    def build_objective(self) -> tuple[list[torch.nn.Parameter], torch.nn.Module]:
        cfg = self.cfg
        if cfg.lora:
            lora.add_lora(self.model, cfg.lora)
        if cfg.grad_checkpointing:
            lora.enable_grad_checkpointing(self.model)
        params = set_trainable(self.model, cfg.frozen)
        device = next(self.model.parameters()).device
        return params, Sam2Objective(self.model, cfg.loss, cfg.correction_clicks,
                                     run_cache(cfg, self.model.image_encoder, device) if cfg.cache_features else None,
                                     checkpoint_clicks=checkpoint_clicks(cfg),
                                     compile="inductor" if cfg.compile else None,  # padded: a GPU is host-bound
                                     pad_to=cfg.max_objects if cfg.compile or device.type == "cuda" else None,
                                     centre_clicks=cfg.centre_clicks)

    def build_items(self, step: int, micro: int) -> list:
        """Images, objects, views and prompt generators of this process's share of the micro-batch."""
        cfg = self.cfg
        positions = step_indices(len(self.data), cfg.batch_size, step, micro, cfg.grad_accum, cfg.seed)
        return make_items(self.data, rank_slice(positions, self.world.rank, self.world.size), step, cfg.seed,
                          cfg.max_objects)

    def micro_batch(self, micro: int) -> tuple[list, str]:
        """This micro-batch's items and the prompt type."""
        cfg, step = self.cfg, self.step
        items = self.ahead.get(step, micro)
        kinds = cfg.prompt_types  # one type per micro-batch: a single decoder call serves every object
        return items, kinds[np.random.default_rng(sample_seed(cfg.seed, step, micro)).integers(len(kinds))]

    def split(self, inputs: tuple[list, str]) -> list[tuple[tuple, float]]:
        """A large step (checkpointed clicks) backpropagates image by image, each weighing 1/B as in the objective's
        mean over images: one image's features and graph alive at a time, not the micro-batch's."""
        items, kind = inputs
        if not self.objective.checkpoint_clicks or len(items) < 2:
            return [(inputs, 1.0)]
        return [(([item], kind), 1 / len(items)) for item in items]

    # LoRA in the checkpoints ---------------------------------------------------------------------------------------
    def weights_state(self) -> dict[str, torch.Tensor]:
        return lora.merged_state_dict(self.model)  # plain sam2 keys, LoRA merged

    def extra_state(self) -> dict[str, Any]:
        return {"lora": lora.adapter_state(self.model)} if self.cfg.lora else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.cfg.lora:  # before the optimizer: its state refers to the adapters
            lora.restore_adapters(self.model, state.get("lora"))
