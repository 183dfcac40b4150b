"""Checkpoints both trainers share: weights as safetensors, resume state as a weights-only torch file.

Every write goes to a temporary file in the same folder and is moved into place with os.replace, so a kill
mid-write leaves the previous checkpoint intact. Nothing is ever unpickled: safetensors for weights,
`torch.load(weights_only=True)` for optimizer/scaler/RNG state.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "resume_state.pt"


class CheckpointError(Exception):
    """A checkpoint that is missing, corrupt, or belongs to a different model."""


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call write(tmp_path), then move tmp_path over `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_weights(state_dict: Mapping[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata or {}))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from err


def load_any_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Our safetensors, or a torch checkpoint ({'model': state_dict} as sam2 ships, or a bare state dict) read
    with weights_only=True so nothing is unpickled."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_weights(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated, foreign or pickled-object files
        raise CheckpointError(f"{path}: not a readable weights-only checkpoint ({type(err).__name__}: {err})") from err
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict (or {{'model': state_dict}}), got {type(data).__name__}")
    return state


def check_keys(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise a CheckpointError listing missing/unexpected/mis-shaped keys instead of torch's traceback."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    if missing or unexpected or shapes:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
        parts = [f"{len(missing)} missing keys: {few(missing)}" if missing else "",
                 f"{len(unexpected)} unexpected keys: {few(unexpected)}" if unexpected else "",
                 f"{len(shapes)} shape mismatches: {few(shapes)}" if shapes else ""]
        raise CheckpointError(f"{source}: checkpoint does not match this model — " + "; ".join(p for p in parts if p))


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(tuple(state["python"][:1]) + (tuple(state["python"][1]),) + tuple(state["python"][2:]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(state: Mapping[str, Any], path: str | Path) -> Path:
    """Resume state (optimizer, scheduler, scaler, step, RNG): plain containers of tensors and numbers only."""
    return atomic_write(path, lambda tmp: torch.save(dict(state), tmp))


def load_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: resume state not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: unreadable resume state ({type(err).__name__}: {err})") from err
