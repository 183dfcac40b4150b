"""Build, load and save SAM2 models: the one place that knows sam2's configs, checkpoints and predictor quirks.

Used by the trainer, the Hub loader and the demo. Weights we write are safetensors in sam2's own key layout;
to use one with plain sam2:  torch.save({"model": safetensors.torch.load_file("model.safetensors")}, "model.pt")
then build_sam2(config, "model.pt").
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from trainer.checkpoint import CheckpointError, WEIGHTS_NAME, check_keys, load_any_weights
from trainer.sam2_model import hf_format
from trainer.sam2_model.spec import CONFIGS, HUB_IDS, MODEL_CONFIG_NAME, Sam2Spec, load_spec, save_spec

def build_model(spec: Sam2Spec, weights: str | Path | None = None, device: str | torch.device = "cpu",
                train: bool = False, overrides: Sequence[str] = ()) -> torch.nn.Module:
    """A SAM2Base from the packaged config; weights: None (random init), a file, a folder, or a Hub id.
    `overrides`: more hydra overrides (the video trainer builds sam2's SAM2Train / SAM2VideoPredictor this way)."""
    # lazy: sam2 imports hydra and registers its configs (seconds); only when a model is built
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
    path = Path(weights)
    if path.is_dir() and not (path / MODEL_CONFIG_NAME).is_file() and hf_format.is_hf_folder(path):
        state, found = hf_format.read_hf_folder(path, memory_from)
        if spec is not None and found.size != spec.size:
            raise CheckpointError(f"{path}: a sam2.1 {found.size} model in transformers' format, not {spec.size}")
        return state, f"{path} (transformers' format)"
    if path.is_dir():
        path = hf_format.sam2_weights(path)  # a pushed repo's sam2.safetensors, or a run's model.safetensors
    elif not path.exists() and "/" in str(weights) and not str(weights).startswith((".", "/")):
        path = Path(_download_official(str(weights)))
    return load_any_weights(path), str(path)


def _download_official(repo_id: str) -> str:
    """An official facebook/sam2* checkpoint from the Hub (sam2's own filename table)."""
    # lazy: only when official weights are fetched
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
    # lazy: sam2 imports hydra and registers its configs (seconds); only when a model is built
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    predictor = SAM2ImagePredictor(model, **kwargs)
    size = model.image_size
    # The predictor hard-codes the 1024-input feature sizes; they are the backbone strides 4, 8, 16.
    predictor._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]
    return predictor


def make_mask_generator(model: torch.nn.Module, stock: bool = False, **kwargs: Any):
    """A SAM2AutomaticMaskGenerator (same arguments and output) whose predictor knows the model's image size:
    ours (trainer/sam2_model/automatic.py, several times faster on CPU; takes `progress`), or sam2's own with
    `stock=True`."""
    # lazy: sam2 imports hydra and registers its configs (seconds); only when a model is built (and .automatic imports this module)
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    from trainer.sam2_model.automatic import FastMaskGenerator

    generator = (SAM2AutomaticMaskGenerator if stock else FastMaskGenerator)(model, **kwargs)
    generator.predictor = make_predictor(model, max_hole_area=kwargs.get("min_mask_region_area", 0),
                                         max_sprinkle_area=kwargs.get("min_mask_region_area", 0))
    return generator


def load_folder(folder: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Sam2Spec]:
    """A fine-tuned model from a run folder or a pulled Hub repo (model_config.yaml + model.safetensors), or from a
    folder in transformers' format (config.json + model.safetensors, converted on load)."""
    if not (Path(folder) / MODEL_CONFIG_NAME).is_file() and hf_format.is_hf_folder(folder):
        spec = hf_format.spec_from_hf_config(hf_format.read_config(folder), str(Path(folder) / hf_format.HF_CONFIG_NAME))
        return build_model(spec, folder, device=device), spec
    spec = load_spec(folder)
    return build_model(spec, hf_format.sam2_weights(folder), device=device), spec


@contextlib.contextmanager
def inference_mode(model: torch.nn.Module) -> Iterator[None]:
    """eval() plus the post-processing build_sam2 enables for inference (a training build has it off)."""
    decoder = model.sam_mask_decoder
    saved = (model.training, decoder.dynamic_multimask_via_stability, decoder.dynamic_multimask_stability_delta,
             decoder.dynamic_multimask_stability_thresh)
    model.eval()
    decoder.dynamic_multimask_via_stability = True
    decoder.dynamic_multimask_stability_delta, decoder.dynamic_multimask_stability_thresh = 0.05, 0.98
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(saved[0])
        (decoder.dynamic_multimask_via_stability, decoder.dynamic_multimask_stability_delta,
         decoder.dynamic_multimask_stability_thresh) = saved[1:]
