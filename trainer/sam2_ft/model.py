"""Build, load and save SAM2 models: the one place that knows sam2's configs, checkpoints and predictor quirks.

Used by the trainer, the Hub loader and the demo. Weights we write are safetensors in sam2's own key layout;
to use one with plain sam2:  torch.save({"model": safetensors.torch.load_file("model.safetensors")}, "model.pt")
then build_sam2(config, "model.pt").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

from trainer.checkpoint import WEIGHTS_NAME, CheckpointError, check_keys, load_any_weights
from trainer.model_limits import check_image_size

# sam2.1 configs packaged inside the sam2 wheel, and the matching official Hub repos.
CONFIGS = {
    "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
HUB_IDS = {size: f"facebook/sam2.1-hiera-{size.replace('_', '-')}" for size in CONFIGS}
MODEL_CONFIG_NAME = "model_config.yaml"


@dataclass
class Sam2Spec:
    """Everything needed to rebuild the architecture (saved as model_config.yaml next to the weights)."""

    size: str = "tiny"
    image_size: int = 1024  # smaller (e.g. 256) for fast CPU tests; multiples of 32 (the backbone's stride x 2)
    kind: str = "sam2"

    @property
    def config(self) -> str:
        return CONFIGS[self.size]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "config": self.config}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model_config") -> "Sam2Spec":
        if data.get("kind", "sam2") != "sam2":
            raise CheckpointError(f"{source}: this is a {data.get('kind')!r} model, not a sam2 model")
        if data.get("size") not in CONFIGS:
            raise CheckpointError(f"{source}: unknown sam2 size {data.get('size')!r}; expected one of {list(CONFIGS)}")
        return cls(size=data["size"], image_size=check_image_size(data.get("image_size", 1024), source))


def build_model(spec: Sam2Spec, weights: str | Path | None = None, device: str | torch.device = "cpu",
                train: bool = False, overrides: Sequence[str] = ()) -> torch.nn.Module:
    """A SAM2Base from the packaged config; weights: None (random init), a file, a folder, or a Hub id.
    `overrides`: more hydra overrides (the video trainer builds sam2's SAM2Train / SAM2VideoPredictor this way)."""
    from sam2.build_sam import build_sam2

    if spec.size not in CONFIGS:
        raise ValueError(f"unknown sam2 size {spec.size!r}; choose one of {', '.join(CONFIGS)}")
    overrides = [*([] if spec.image_size == 1024 else [f"++model.image_size={spec.image_size}"]), *overrides]
    # Inference post-processing (dynamic multimask fallback) only for eval; training sees raw decoder outputs.
    model = build_sam2(spec.config, None, device="cpu", mode="train" if train else "eval",
                       hydra_overrides_extra=overrides, apply_postprocessing=not train)
    if weights is not None:
        state, source = read_state_dict(weights, spec, memory_from=model.state_dict())
        check_keys(model, state, source)
        model.load_state_dict(state)
    return model.to(device)


def read_state_dict(weights: str | Path, spec: Sam2Spec | None = None,
                    memory_from: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Weights from our safetensors, a folder holding one, sam2's official .pt, or a Hub id (downloaded); a folder
    in transformers' format (config.json + model.safetensors) is converted to sam2's keys (hf_format.py)."""
    from trainer.sam2_ft import hf_format

    path = Path(weights)
    if path.is_dir() and not (path / MODEL_CONFIG_NAME).is_file() and hf_format.is_hf_folder(path):
        state, found = hf_format.read_hf_folder(path, memory_from)
        if spec is not None and found.size != spec.size:
            raise CheckpointError(f"{path}: a sam2.1 {found.size} model in transformers' format, not {spec.size}")
        return state, f"{path} (transformers' format)"
    if path.is_dir():
        path = path / WEIGHTS_NAME
    elif not path.exists() and "/" in str(weights) and not str(weights).startswith((".", "/")):
        path = Path(_download_official(str(weights)))
    return load_any_weights(path), str(path)


def _download_official(repo_id: str) -> str:
    """An official facebook/sam2* checkpoint from the Hub (sam2's own filename table)."""
    from huggingface_hub import hf_hub_download
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

    if repo_id not in HF_MODEL_ID_TO_FILENAMES:
        raise CheckpointError(f"{repo_id}: not a known sam2 checkpoint; known: {', '.join(HF_MODEL_ID_TO_FILENAMES)}")
    try:
        return hf_hub_download(repo_id=repo_id, filename=HF_MODEL_ID_TO_FILENAMES[repo_id][1])
    except Exception as err:  # offline, gated, rate-limited: one line instead of a retry log + traceback
        raise CheckpointError(f"{repo_id}: could not download the checkpoint ({type(err).__name__}); "
                              "pass --weights FILE_OR_FOLDER, or --no-pretrained for random init") from err


def make_predictor(model: torch.nn.Module, **kwargs: Any):
    """SAM2ImagePredictor that also works for image sizes other than 1024."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    predictor = SAM2ImagePredictor(model, **kwargs)
    size = model.image_size
    # The predictor hard-codes the 1024-input feature sizes; they are the backbone strides 4, 8, 16.
    predictor._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]
    return predictor


def make_mask_generator(model: torch.nn.Module, stock: bool = False, **kwargs: Any):
    """A SAM2AutomaticMaskGenerator (same arguments and output) whose predictor knows the model's image size:
    ours (trainer/sam2_ft/automatic.py, several times faster on CPU; takes `progress`), or sam2's own with
    `stock=True`."""
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    from trainer.sam2_ft.automatic import FastMaskGenerator

    generator = (SAM2AutomaticMaskGenerator if stock else FastMaskGenerator)(model, **kwargs)
    generator.predictor = make_predictor(model, max_hole_area=kwargs.get("min_mask_region_area", 0),
                                         max_sprinkle_area=kwargs.get("min_mask_region_area", 0))
    return generator


def save_spec(spec: Sam2Spec, folder: str | Path) -> Path:
    """model_config.yaml from spec.to_dict() (also for the semantic trainer's spec, built on this encoder)."""
    path = Path(folder) / MODEL_CONFIG_NAME
    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return path


def load_spec(folder: str | Path, spec_cls: type = Sam2Spec) -> Any:
    """The spec in model_config.yaml, read with spec_cls.from_dict (Sam2Spec, or the semantic SemanticSpec)."""
    path = Path(folder) / MODEL_CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a {spec_cls.kind} model folder holds {MODEL_CONFIG_NAME} and "
                              f"{WEIGHTS_NAME}")
    return spec_cls.from_dict(yaml.safe_load(path.read_text()) or {}, str(path))


def load_folder(folder: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Sam2Spec]:
    """A fine-tuned model from a run folder or a pulled Hub repo (model_config.yaml + model.safetensors), or from a
    folder in transformers' format (config.json + model.safetensors, converted on load)."""
    from trainer.sam2_ft import hf_format

    if not (Path(folder) / MODEL_CONFIG_NAME).is_file() and hf_format.is_hf_folder(folder):
        spec = hf_format.spec_from_hf_config(hf_format.read_config(folder), str(Path(folder) / hf_format.HF_CONFIG_NAME))
        return build_model(spec, folder, device=device), spec
    spec = load_spec(folder)
    return build_model(spec, Path(folder) / WEIGHTS_NAME, device=device), spec
