"""LoRA on the image encoder's attention (peft), and gradient checkpointing of its Hiera blocks.

LoRA is the middle way between a frozen and a fully trained image encoder: every Hiera block's `attn.qkv` and
`attn.proj` Linear gets a trainable low-rank update (peft's `inject_adapter_in_model`), the base weights stay fixed.
On save the updates are merged into a copy of the weights (`merged_state_dict`), so model.safetensors is an ordinary
sam2 checkpoint: the Hub, the app and `build_sam2` never see peft. The unmerged adapters travel in the resume state.
"""

from __future__ import annotations

import functools
import sys

import torch
from torch.utils.checkpoint import checkpoint

ADAPTER = "default"
TARGETS = r"image_encoder\.trunk\.blocks\.\d+\.attn\.(qkv|proj)"  # sam2/modeling/backbones/hieradet.py names


def _lora_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    # a model holds peft's LoraLayers only once peft's lora module is imported (add_lora does): a plain run never
    # imports peft (seconds of imports at every save otherwise, in each process of a run)
    peft_lora = sys.modules.get("peft.tuners.lora")
    if peft_lora is None:
        return {}
    return {name: module for name, module in model.named_modules() if isinstance(module, peft_lora.LoraLayer)}


def has_lora(model: torch.nn.Module) -> bool:
    return bool(_lora_layers(model))


def add_lora(model: torch.nn.Module, rank: int, alpha: float | None = None) -> list[torch.nn.Parameter]:
    """Inject rank-`rank` LoRA into the encoder attention (in place); returns the adapter parameters.

    lora_B starts at zero (peft's default), so the model's outputs are unchanged until it trains.
    """
    # lazy: peft only for LoRA runs
    from peft import LoraConfig
    from peft.functional import inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=TARGETS, lora_dropout=0.0)
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    return adapter_parameters(model)


def adapter_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for name, p in model.named_parameters() if ".lora_" in name]


def merged_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """model.state_dict() in plain sam2 keys, each LoRA update added to its base weight; the model is unchanged."""
    state = model.state_dict()
    layers = _lora_layers(model)
    if not layers:
        return state
    for name, layer in layers.items():
        base = f"{name}.base_layer."
        for key in [k for k in state if k.startswith(base)]:
            state[name + "." + key[len(base):]] = state.pop(key)
        with torch.no_grad():
            state[f"{name}.weight"] = state[f"{name}.weight"] + layer.get_delta_weight(ADAPTER).to(
                state[f"{name}.weight"].dtype)
    return {k: v for k, v in state.items() if ".lora_" not in k}


def adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The adapters alone (for the resume state)."""
    # lazy: peft only for LoRA runs
    from peft.functional import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model, adapter_name=ADAPTER).items()}


def restore_adapters(model: torch.nn.Module, state: dict[str, torch.Tensor] | None) -> None:
    """Resume: the model was rebuilt from the merged weights; load the adapters and take their update back out of
    the base weights (peft's own unmerge), so base + adapter is again what was trained."""
    # lazy: peft only for LoRA runs
    from peft.functional import set_peft_model_state_dict

    if not state:
        raise ValueError("resume state: no LoRA adapters in it (was the run trained without --lora?)")
    result = set_peft_model_state_dict(model, state, adapter_name=ADAPTER)
    if result.unexpected_keys:
        raise ValueError(f"resume state: unexpected LoRA keys {result.unexpected_keys[:3]} (different --lora rank?)")
    for layer in _lora_layers(model).values():
        layer.merged_adapters.append(ADAPTER)
        layer.unmerge()


def _checkpointed(block: torch.nn.Module, forward, x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() and block.training:
        return checkpoint(forward, x, use_reentrant=False)
    return forward(x)


def enable_grad_checkpointing(model: torch.nn.Module) -> int:
    """Recompute each Hiera block's activations in the backward pass instead of keeping them (less memory, ~1/3 more
    compute). The blocks' forward is wrapped in place: module names and the state dict do not change."""
    blocks = model.image_encoder.trunk.blocks
    for block in blocks:
        if not isinstance(block.forward, functools.partial):
            block.forward = functools.partial(_checkpointed, block, block.forward)
    return len(blocks)
