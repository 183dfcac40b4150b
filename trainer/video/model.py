"""Build sam2's own video classes from the packaged sam2.1 configs: `SAM2Train` (training.model.sam2) to train,
`SAM2VideoPredictor` to track. Both have exactly SAM2Base's weights, so a run's model.safetensors is a plain sam2
checkpoint: `build_sam2_video_predictor(config, ckpt)` loads it (after torch.save({"model": state}, "model.pt")).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.checkpoint import CheckpointError, WEIGHTS_NAME
from trainer.sam2_model.hf_format import HF_MODEL_TYPES, is_hf_folder, read_config, sam2_weights
from trainer.sam2_model.model import CONFIGS, MODEL_CONFIG_NAME, Sam2Spec, build_model, load_spec
from trainer.model_limits import check_image_size

KIND = "sam2-video"
# Memory attention's starting locality (start_local): its cross-attention's logits fall by 1.9 one feature cell (16 px)
# away from a query's own place and by 6.6 two cells away; the built-in coins move about one cell a frame at 256 px.
LOCAL_ATTENTION = 4.0
# sam2's SAM2VideoPredictor as build_sam2_video_predictor makes it (fill_hole_area needs sam2's CUDA extension,
# which the CPU build lacks: left at 0)
PREDICTOR = ["++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
             "++model.binarize_mask_from_pts_for_mem_enc=true"]


@dataclass
class VideoSpec(Sam2Spec):
    kind: str = KIND

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model_config") -> "VideoSpec":
        """A sam2-video spec; a sam2 (image) spec too, so an image model can be tracked with (its memory as it is)."""
        if data.get("kind", "sam2") not in (KIND, "sam2"):
            raise CheckpointError(f"{source}: this is a {data.get('kind')!r} model, not a sam2 / sam2-video model")
        if data.get("size") not in CONFIGS:
            raise CheckpointError(f"{source}: unknown sam2 size {data.get('size')!r}; expected one of {list(CONFIGS)}")
        return cls(size=data["size"], image_size=check_image_size(data.get("image_size", 1024), source),
                   kind=data.get("kind", "sam2"))


def train_overrides(cfg) -> list[str]:
    """SAM2Train with the prompt sampling of sam2's MOSE fine-tune config, as the run's config sets it."""
    return ["++model._target_=training.model.sam2.SAM2Train",
            f"++model.prob_to_use_pt_input_for_train={cfg.point_prob}",
            f"++model.prob_to_use_box_input_for_train={cfg.box_prob}",
            "++model.prob_to_sample_from_gt_for_train=0.1",
            f"++model.num_frames_to_correct_for_train={cfg.correct_frames}",
            "++model.rand_frames_to_correct_for_train=true",
            "++model.add_all_frames_to_correct_as_cond=true",
            "++model.num_init_cond_frames_for_train=1",
            f"++model.num_correction_pt_per_frame={cfg.correction_points}"]


def build_train_model(cfg, weights: str | Path | None, device: torch.device, start: bool = True) -> torch.nn.Module:
    """SAM2Train with `weights`; a new run (`start`) whose base never trained its memory starts it local (start_local:
    --memory-start)."""
    torch.manual_seed(cfg.seed)  # random init is reproducible (the base model of the overlays is rebuilt)
    model = build_model(VideoSpec(cfg.size, cfg.image_size), weights, device=device, train=True,
                        overrides=train_overrides(cfg))
    if start and (cfg.memory_start == "local" or cfg.memory_start == "auto" and memory_untrained(weights)):
        start_local(model)
    return model


def memory_untrained(weights: str | Path | None) -> bool:
    """Random init, or a SAM2 image model's folder, ours or transformers' `Sam2Model` (image training never runs the
    memory modules); a checkpoint file or Hub id (the official weights) has a trained memory."""
    if weights is None:
        return True
    folder = Path(weights)
    if (folder / MODEL_CONFIG_NAME).is_file():
        return load_spec(folder, VideoSpec).kind != KIND
    return is_hf_folder(folder) and read_config(folder)["model_type"] == HF_MODEL_TYPES["sam2"]


def start_local(model: torch.nn.Module, strength: float = LOCAL_ATTENTION) -> None:
    """Memory attention's cross-attention starts by looking at the same place in the remembered frames.

    Untrained, it averages every remembered position alike, so all objects of a frame get the same features and the
    same mask, and the loss is lowest for an empty mask: 30 steps on one clip from the quickstart's image model
    tracked nothing (J&F 0.00; bench/README.md). Here its queries and keys get the same bias, `strength` on the real
    part of each rotary pair: under sam2's 2D RoPE their product is then strength^2 / sqrt(d) * sum_i cos(w_i *
    offset), highest at offset 0, so each position first reads the earlier masks where it is, the cue that tells
    look-alike objects apart when they move little between frames. Training is free to change it (they are weights).
    """
    with torch.no_grad():
        for layer in model.memory_attention.layers:
            attention = layer.cross_attn_image
            bias = torch.zeros_like(attention.q_proj.bias)
            bias[0::2] = strength  # real parts of the complex pairs RoPE rotates
            attention.q_proj.bias.copy_(bias)
            attention.k_proj.bias.copy_(bias)


def build_predictor(spec: Sam2Spec, weights: str | Path | None, device: str | torch.device = "cpu",
                    seed: int = 0) -> torch.nn.Module:
    """A SAM2VideoPredictor of `spec`'s size and input size with `weights` (None: random init, seeded)."""
    with torch.random.fork_rng(devices=[]):  # seeded random init without disturbing the caller's generator
        torch.manual_seed(seed)
        return build_model(Sam2Spec(spec.size, spec.image_size), weights, device=device, overrides=PREDICTOR)


def load_folder(folder: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, VideoSpec]:
    """(SAM2VideoPredictor, spec) from a run folder or pulled repo; a SAM2 image model's folder works too."""
    if not (Path(folder) / MODEL_CONFIG_NAME).is_file():
        raise CheckpointError(f"{Path(folder) / MODEL_CONFIG_NAME}: missing; a {KIND} model folder holds "
                              f"{MODEL_CONFIG_NAME} and {WEIGHTS_NAME}")
    spec = load_spec(folder, VideoSpec)
    return build_predictor(spec, sam2_weights(folder), device), spec
