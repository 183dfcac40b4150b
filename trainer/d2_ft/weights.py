"""Where initial weights come from, and loading them without unpickling anything we don't trust.

    none                     random init (--no-pretrained)
    'zoo' / zoo URL          detectron2's COCO weights (.pkl), via DetectionCheckpointer — pickle, so only
                             from detectron2's own download server (TRUSTED_URLS)
    run folder / Hub repo    our model_config.yaml + model.safetensors (the architecture comes from its spec)
    file.safetensors         our weights
    file.pth                 a detectron2 checkpoint, read with torch.load(weights_only=True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainer.checkpoint import WEIGHTS_NAME, CheckpointError, check_keys, load_weights
from trainer.d2_ft.model import MODEL_CONFIG_NAME, D2Spec, load_spec

TRUSTED_URLS = ("https://dl.fbaipublicfiles.com/detectron2/", "detectron2://")


@dataclass
class InitWeights:
    kind: str  # "none" | "zoo" | "folder" | "file"
    ref: str = ""  # URL, folder or file
    spec: D2Spec | None = None  # the architecture a folder was trained with

    @property
    def description(self) -> str:
        """For summary.json / the model card: what the run started from."""
        return "random-init" if self.kind == "none" else self.ref


def resolve(weights: str | None, pretrained: bool, zoo_config: str) -> InitWeights:
    """Turn --weights / --no-pretrained into a concrete source (downloads a Hub repo folder)."""
    from detectron2 import model_zoo

    if not pretrained:
        return InitWeights("none")
    if weights in (None, "zoo"):
        try:
            return InitWeights("zoo", model_zoo.get_checkpoint_url(zoo_config))
        except RuntimeError as err:
            raise CheckpointError(f"{zoo_config}: no zoo weights for this config ({err})") from err
    if weights.startswith(TRUSTED_URLS):
        return InitWeights("zoo", weights)
    if "://" in weights:
        raise CheckpointError(f"{weights}: refusing a pickle from an untrusted URL; download it and convert to "
                              "safetensors, or use a detectron2 zoo URL")
    path = Path(weights)
    if path.is_dir():
        return InitWeights("folder", str(path), load_spec(path)[0])
    if path.is_file():
        if path.suffix == ".pkl":
            raise CheckpointError(f"{path}: .pkl files are pickles; only detectron2's zoo URLs are loaded that way "
                                  "(pass the URL, or a .safetensors file)")
        return InitWeights("file", str(path))
    if weights.count("/") == 1 and not weights.startswith((".", "/")):
        return InitWeights("folder", *_download_hub(weights))
    raise CheckpointError(f"{weights}: not a file, folder, zoo URL or Hub repo id")


def _download_hub(repo_id: str) -> tuple[str, D2Spec]:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, allow_patterns=[MODEL_CONFIG_NAME, WEIGHTS_NAME])
    except Exception as err:  # offline, missing repo, auth: all mean "cannot use these weights"
        raise CheckpointError(f"{repo_id}: could not download from the Hub ({type(err).__name__}: {err})") from err
    return folder, load_spec(folder)[0]


def load_init(model: torch.nn.Module, init: InitWeights, checkpointer) -> None:
    """Load `init` into the (unwrapped) model; zoo weights go through detectron2's checkpointer, whose
    shape-mismatch skipping drops COCO's 80-class heads for our class count."""
    if init.kind == "none":
        return
    if init.kind == "zoo":
        try:
            checkpointer.load(init.ref, checkpointables=[])
        except (OSError, RuntimeError) as err:
            raise CheckpointError(f"{init.ref}: could not load zoo weights ({type(err).__name__}: {err}); "
                                  "use --no-pretrained or --weights offline") from err
        return
    path = Path(init.ref)
    if init.kind == "folder":
        state, source = load_weights(path / WEIGHTS_NAME), str(path / WEIGHTS_NAME)
    elif path.suffix == ".safetensors":
        state, source = load_weights(path), str(path)
    else:
        state, source = _read_pth(path), str(path)
    check_keys(model, state, source)
    model.load_state_dict(state)


def _read_pth(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable weights-only checkpoint ({type(err).__name__}: {err})") from err
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict (or {{'model': state_dict}}), got {type(data).__name__}")
    return state
