"""SAM2 in transformers' format: the key table between sam2's SAM2Base and transformers' Sam2VideoModel, the
config.json / processor config of a segkit model, and reading a transformers folder back into sam2's layout.

A pushed sam2 / sam2-video repo is laid out like the official facebook/sam2.1-hiera-* repos: transformers' files at
the root (config.json, model.safetensors, processor_config.json), so `from_pretrained(repo)` just works, and sam2's
own weights beside them under their own name (SAM2_WEIGHTS_NAME, next to segkit's model_config.yaml). A sam2 repo's
config.json is a Sam2Model's (model_type "sam2", image part only: what Sam2Model and the "mask-generation" pipeline
read); a sam2-video repo's is a Sam2VideoModel's (model_type "sam2_video", every tensor, memory included).

The table is written from the two models' state dicts and every key of both sides must be matched by exactly one
row: an unknown key on either side raises `FormatError` (a renamed key in a new transformers release fails loudly
instead of loading a half-random model). tests/test_hub_transformers.py checks the table against both live models.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml

from trainer.checkpoint import WEIGHTS_NAME, CheckpointError, load_weights, save_weights
from trainer.sam2_model.spec import CONFIGS, MODEL_CONFIG_NAME, Sam2Spec

HF_CONFIG_NAME = "config.json"
# sam2's weights (sam2's key layout) in a pushed repo, whose root model.safetensors is transformers'. The official
# repos name sam2's checkpoint sam2.1_hiera_<size>.pt (sam2.build_sam.HF_MODEL_ID_TO_FILENAMES); ours is safetensors.
SAM2_WEIGHTS_NAME = "sam2.safetensors"
HF_MODEL_TYPES = {"sam2": "sam2", "sam2-video": "sam2_video"}  # segkit kind -> the config.json model_type we write
SAM2_MEMORY_PREFIXES = ("memory_attention.", "memory_encoder.", "mask_downsample.", "maskmem_tpos_enc",
                        "no_mem_pos_enc", "no_obj_embed_spatial", "no_obj_ptr", "obj_ptr_proj.", "obj_ptr_tpos_proj.")


class FormatError(CheckpointError):
    """A state dict or folder that the sam2 <-> transformers table cannot convert exactly (one line: what and why)."""


# (sam2 key, transformers key). {i}/{j} stand for a layer index, {p} for weight|bias; a row maps that whole family.
# Grouped by module, in the order of sam2's state dict.
_MLP3 = (("layers.0", "proj_in"), ("layers.1", "layers.0"), ("layers.2", "proj_out"))  # sam2 MLP of 3 -> HF FeedForward
KEY_TABLE: tuple[tuple[str, str], ...] = (
    # image encoder: Hiera trunk + FPN neck
    ("image_encoder.trunk.pos_embed", "vision_encoder.backbone.pos_embed"),
    ("image_encoder.trunk.pos_embed_window", "vision_encoder.backbone.pos_embed_window"),
    ("image_encoder.trunk.patch_embed.proj.{p}", "vision_encoder.backbone.patch_embed.projection.{p}"),
    ("image_encoder.trunk.blocks.{i}.norm1.{p}", "vision_encoder.backbone.blocks.{i}.layer_norm1.{p}"),
    ("image_encoder.trunk.blocks.{i}.norm2.{p}", "vision_encoder.backbone.blocks.{i}.layer_norm2.{p}"),
    ("image_encoder.trunk.blocks.{i}.attn.qkv.{p}", "vision_encoder.backbone.blocks.{i}.attn.qkv.{p}"),
    ("image_encoder.trunk.blocks.{i}.attn.proj.{p}", "vision_encoder.backbone.blocks.{i}.attn.proj.{p}"),
    ("image_encoder.trunk.blocks.{i}.proj.{p}", "vision_encoder.backbone.blocks.{i}.proj.{p}"),  # stage-change proj
    ("image_encoder.trunk.blocks.{i}.mlp.layers.0.{p}", "vision_encoder.backbone.blocks.{i}.mlp.proj_in.{p}"),
    ("image_encoder.trunk.blocks.{i}.mlp.layers.1.{p}", "vision_encoder.backbone.blocks.{i}.mlp.proj_out.{p}"),
    ("image_encoder.neck.convs.{i}.conv.{p}", "vision_encoder.neck.convs.{i}.{p}"),
    # prompt encoder (point_embeddings.{i} and the positional matrix are special: see _SPECIAL below)
    ("sam_prompt_encoder.not_a_point_embed.weight", "prompt_encoder.not_a_point_embed.weight"),
    ("sam_prompt_encoder.no_mask_embed.weight", "prompt_encoder.no_mask_embed.weight"),
    ("sam_prompt_encoder.mask_downscaling.0.{p}", "prompt_encoder.mask_embed.conv1.{p}"),
    ("sam_prompt_encoder.mask_downscaling.1.{p}", "prompt_encoder.mask_embed.layer_norm1.{p}"),
    ("sam_prompt_encoder.mask_downscaling.3.{p}", "prompt_encoder.mask_embed.conv2.{p}"),
    ("sam_prompt_encoder.mask_downscaling.4.{p}", "prompt_encoder.mask_embed.layer_norm2.{p}"),
    ("sam_prompt_encoder.mask_downscaling.6.{p}", "prompt_encoder.mask_embed.conv3.{p}"),
    # mask decoder
    *((f"sam_mask_decoder.transformer.layers.{{i}}.{a}.{x}_proj.{{p}}",
       f"mask_decoder.transformer.layers.{{i}}.{a}.{x}_proj.{{p}}".replace(".out_proj", ".o_proj"))
      for a in ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token") for x in ("q", "k", "v", "out")),
    ("sam_mask_decoder.transformer.layers.{i}.norm{j}.{p}", "mask_decoder.transformer.layers.{i}.layer_norm{j}.{p}"),
    ("sam_mask_decoder.transformer.layers.{i}.mlp.layers.0.{p}", "mask_decoder.transformer.layers.{i}.mlp.proj_in.{p}"),
    ("sam_mask_decoder.transformer.layers.{i}.mlp.layers.1.{p}", "mask_decoder.transformer.layers.{i}.mlp.proj_out.{p}"),
    *((f"sam_mask_decoder.transformer.final_attn_token_to_image.{x}_proj.{{p}}",
       f"mask_decoder.transformer.final_attn_token_to_image.{'o' if x == 'out' else x}_proj.{{p}}")
      for x in ("q", "k", "v", "out")),
    ("sam_mask_decoder.transformer.norm_final_attn.{p}", "mask_decoder.transformer.layer_norm_final_attn.{p}"),
    ("sam_mask_decoder.iou_token.weight", "mask_decoder.iou_token.weight"),
    ("sam_mask_decoder.mask_tokens.weight", "mask_decoder.mask_tokens.weight"),
    ("sam_mask_decoder.obj_score_token.weight", "mask_decoder.obj_score_token.weight"),
    ("sam_mask_decoder.output_upscaling.0.{p}", "mask_decoder.upscale_conv1.{p}"),
    ("sam_mask_decoder.output_upscaling.1.{p}", "mask_decoder.upscale_layer_norm.{p}"),
    ("sam_mask_decoder.output_upscaling.3.{p}", "mask_decoder.upscale_conv2.{p}"),
    ("sam_mask_decoder.conv_s0.{p}", "mask_decoder.conv_s0.{p}"),
    ("sam_mask_decoder.conv_s1.{p}", "mask_decoder.conv_s1.{p}"),
    *((f"sam_mask_decoder.output_hypernetworks_mlps.{{i}}.{a}.{{p}}", f"mask_decoder.output_hypernetworks_mlps.{{i}}.{b}.{{p}}")
      for a, b in _MLP3),
    *((f"sam_mask_decoder.iou_prediction_head.{a}.{{p}}", f"mask_decoder.iou_prediction_head.{b}.{{p}}") for a, b in _MLP3),
    *((f"sam_mask_decoder.pred_obj_score_head.{a}.{{p}}", f"mask_decoder.pred_obj_score_head.{b}.{{p}}") for a, b in _MLP3),
    # video memory: memory attention, memory encoder, object pointers (unused by image prediction, kept exactly)
    *((f"memory_attention.layers.{{i}}.{a}.{x}_proj.{{p}}", f"memory_attention.layers.{{i}}.{a}.{'o' if x == 'out' else x}_proj.{{p}}")
      for a in ("self_attn", "cross_attn_image") for x in ("q", "k", "v", "out")),
    ("memory_attention.layers.{i}.linear{j}.{p}", "memory_attention.layers.{i}.linear{j}.{p}"),
    ("memory_attention.layers.{i}.norm{j}.{p}", "memory_attention.layers.{i}.layer_norm{j}.{p}"),
    ("memory_attention.norm.{p}", "memory_attention.layer_norm.{p}"),
    # sam2's MaskDownSampler is one Sequential (conv, LayerNorm2d, GELU) x 4 + a final 1x1 conv (total stride 16)
    *((f"memory_encoder.mask_downsampler.encoder.{3 * k}.{{p}}", f"memory_encoder.mask_downsampler.layers.{k}.conv.{{p}}")
      for k in range(4)),
    *((f"memory_encoder.mask_downsampler.encoder.{3 * k + 1}.{{p}}",
       f"memory_encoder.mask_downsampler.layers.{k}.layer_norm.{{p}}") for k in range(4)),
    ("memory_encoder.mask_downsampler.encoder.12.{p}", "memory_encoder.mask_downsampler.final_conv.{p}"),
    ("memory_encoder.pix_feat_proj.{p}", "memory_encoder.feature_projection.{p}"),
    ("memory_encoder.fuser.layers.{i}.dwconv.{p}", "memory_encoder.memory_fuser.layers.{i}.depthwise_conv.{p}"),
    ("memory_encoder.fuser.layers.{i}.norm.{p}", "memory_encoder.memory_fuser.layers.{i}.layer_norm.{p}"),
    ("memory_encoder.fuser.layers.{i}.pwconv{j}.{p}", "memory_encoder.memory_fuser.layers.{i}.pointwise_conv{j}.{p}"),
    ("memory_encoder.fuser.layers.{i}.gamma", "memory_encoder.memory_fuser.layers.{i}.scale"),
    ("memory_encoder.out_proj.{p}", "memory_encoder.projection.{p}"),
    ("mask_downsample.{p}", "mask_downsample.{p}"),
    ("maskmem_tpos_enc", "memory_temporal_positional_encoding"),
    ("no_mem_embed", "no_memory_embedding"),
    ("no_mem_pos_enc", "no_memory_positional_encoding"),
    ("no_obj_ptr", "no_object_pointer"),
    ("no_obj_embed_spatial", "occlusion_spatial_embedding_parameter"),
    *((f"obj_ptr_proj.{a}.{{p}}", f"object_pointer_proj.{b}.{{p}}") for a, b in _MLP3),
    ("obj_ptr_tpos_proj.{p}", "temporal_positional_encoding_projection_layer.{p}"),
)
# Not one-to-one, so outside the table: sam2 keeps the 4 point embeddings as 4 Embedding(1, 256), transformers as
# one Embedding(4, 256); sam2 has one random-Fourier matrix, transformers a copy in the prompt encoder and one for the
# image-wide positional embedding (both buffers, never trained).
POINT_EMBED = ("sam_prompt_encoder.point_embeddings.{i}.weight", "prompt_encoder.point_embed.weight")
FOURIER = ("sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
           ("prompt_encoder.shared_embedding.positional_embedding", "shared_image_embedding.positional_embedding"))


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
    return re.compile(pattern.replace(r"\{p\}", r"(?P<p>weight|bias)") + r"\Z")


_ROWS = [(_compile(a), a, _compile(b), b) for a, b in KEY_TABLE]


def _rename(key: str, to_hf: bool) -> str | None:
    """The other side's name of `key`, or None when no row matches."""
    for sam2_re, sam2_t, hf_re, hf_t in _ROWS:
        match = (sam2_re if to_hf else hf_re).match(key)
        if match:
            return (hf_t if to_hf else sam2_t).format(**match.groupdict())
    return None


def _unmapped(keys: list[str], side: str) -> FormatError:
    few = ", ".join(sorted(keys)[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
    return FormatError(f"{len(keys)} {side} keys have no row in the sam2 <-> transformers key table: {few}")


def sam2_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """sam2's state dict (SAM2Base) in Sam2VideoModel's key layout; raises FormatError on any unmapped key."""
    out: dict[str, torch.Tensor] = {}
    points: dict[int, torch.Tensor] = {}
    unmapped = []
    point_re = _compile(POINT_EMBED[0])
    for key, value in state.items():
        if key == FOURIER[0]:
            for name in FOURIER[1]:
                out[name] = value.clone()
        elif point_re.match(key):
            points[int(point_re.match(key)["i"])] = value
        elif (new := _rename(key, to_hf=True)) is not None:
            out[new] = value
        else:
            unmapped.append(key)
    if unmapped:
        raise _unmapped(unmapped, "sam2")
    if points:
        if sorted(points) != list(range(len(points))):
            raise FormatError(f"sam2 point embeddings {sorted(points)}: expected 0..{len(points) - 1}")
        out[POINT_EMBED[1]] = torch.cat([points[i] for i in range(len(points))], dim=0)
    return out


def hf_to_sam2(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' Sam2VideoModel / Sam2Model state dict in sam2's key layout; raises FormatError on any
    unmapped key, and when the two copies of the Fourier matrix differ (sam2 has one)."""
    out: dict[str, torch.Tensor] = {}
    unmapped = []
    fourier = [state[name] for name in FOURIER[1] if name in state]
    for key, value in state.items():
        if key in FOURIER[1]:
            continue
        if key == POINT_EMBED[1]:
            for i, row in enumerate(value.split(1, dim=0)):
                out[POINT_EMBED[0].format(i=i)] = row.clone()
        elif (new := _rename(key, to_hf=False)) is not None:
            out[new] = value
        else:
            unmapped.append(key)
    if unmapped:
        raise _unmapped(unmapped, "transformers")
    if fourier:
        if any(not torch.equal(fourier[0], other) for other in fourier[1:]):
            raise FormatError(f"{' and '.join(FOURIER[1])} differ; sam2 has one positional matrix for both")
        out[FOURIER[0]] = fourier[0]
    return out


# Config ----------------------------------------------------------------------------------------------------------

def _sam2_yaml(size: str) -> dict[str, Any]:
    """The packaged sam2.1 config of `size` (plain YAML; hydra is not needed to read it)."""
    import sam2  # lazy: sam2 imports hydra and initialises its configs (seconds)

    return yaml.safe_load((Path(sam2.__file__).parent / CONFIGS[size]).read_text())["model"]


def _hiera(size: str) -> dict[str, Any]:
    """Hiera's arguments for `size`: its signature's defaults (base_plus sets few) overlaid with the config's."""
    # lazy: sam2 imports hydra and registers its configs (seconds)
    from sam2.modeling.backbones.hieradet import Hiera

    args = {name: p.default for name, p in inspect.signature(Hiera.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}
    return {**args, **{k: v for k, v in _sam2_yaml(size)["image_encoder"]["trunk"].items() if k != "_target_"}}


def check_image_size(image_size: int) -> None:
    """transformers' Hiera tiles the stage-1 window embedding (8 x 8) over the stride-4 features like sam2 does, so
    the input must be a multiple of 32; every size the trainer accepts is."""
    if image_size <= 0 or image_size % 32:
        raise FormatError(f"image size {image_size}: transformers' Sam2 (like sam2) needs a multiple of 32")


def _backbone(size: str, image_size: int) -> dict[str, Any]:
    """transformers' Sam2HieraDetConfig fields of sam2.1 `size` (plain values, also compared on load)."""
    h = _hiera(size)
    e, heads = int(h["embed_dim"]), int(h["num_heads"])
    return {
        "hidden_size": e, "num_attention_heads": heads, "image_size": [image_size, image_size],
        "blocks_per_stage": list(h["stages"]), "embed_dim_per_stage": [e * 2 ** k for k in range(4)],
        "num_attention_heads_per_stage": [heads * 2 ** k for k in range(4)],
        "window_size_per_stage": list(h["window_spec"]), "global_attention_blocks": list(h["global_att_blocks"]),
        "window_positional_embedding_background_size": list(h["window_pos_embed_bkg_spatial_size"]),
    }


def hf_config(size: str, image_size: int, video: bool = True) -> Any:
    """transformers' config of a segkit sam2.1 model (size, input size): Sam2VideoConfig (video=True, every tensor)
    or Sam2Config (the image model). The prompt encoder, decoder and memory settings are sam2.1's, which are
    transformers' defaults."""
    # lazy: transformers only for its layout (seconds to import)
    from transformers import Sam2Config, Sam2VideoConfig

    check_image_size(image_size)
    neck = _sam2_yaml(size)["image_encoder"]["neck"]
    s = image_size
    vision = {"model_type": "sam2_vision_model",
              "backbone_config": {"model_type": "sam2_hiera_det_model", **_backbone(size, s)},
              "backbone_channel_list": list(neck["backbone_channel_list"]),
              "backbone_feature_sizes": [[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
              "fpn_top_down_levels": list(neck["fpn_top_down_levels"])}
    if not video:
        config = Sam2Config(vision_config=vision, prompt_encoder_config={"image_size": s})
        config.architectures = ["Sam2Model"]
        return config
    config = Sam2VideoConfig(vision_config=vision, prompt_encoder_config={"image_size": s}, image_size=s,
                             memory_attention_rope_feat_sizes=[s // 16, s // 16])
    config.architectures = ["Sam2VideoModel"]
    return config


def spec_from_hf_config(config: Mapping[str, Any], source: str = HF_CONFIG_NAME) -> "Sam2Spec":
    """The Sam2Spec whose backbone is this config.json's (FormatError for one that is no sam2.1 size)."""

    if config.get("model_type") not in HF_MODEL_TYPES.values():
        raise FormatError(f"{source}: model_type {config.get('model_type')!r} is not a SAM2 model "
                          f"(expected one of {', '.join(HF_MODEL_TYPES.values())})")
    # lazy: transformers only for its layout (seconds to import)
    from transformers import CONFIG_MAPPING

    try:  # transformers fills what the file leaves out with its defaults, so compare its reading of the file
        parsed = CONFIG_MAPPING[config["model_type"]].from_dict(dict(config))
    except (TypeError, ValueError, KeyError) as err:
        raise FormatError(f"{source}: transformers cannot read this config ({type(err).__name__}: {err})") from err
    backbone = parsed.vision_config.backbone_config.to_dict()
    image_size = int(parsed.prompt_encoder_config.image_size)  # both configs have it (Sam2Config no image_size)
    check_image_size(image_size)
    for size in CONFIGS:
        ours = _backbone(size, image_size)
        if all(json.dumps(list(backbone.get(k)) if isinstance(backbone.get(k), tuple) else backbone.get(k))
               == json.dumps(v) for k, v in ours.items() if k != "image_size"):
            return Sam2Spec(size=size, image_size=image_size)
    raise FormatError(f"{source}: a Hiera backbone that matches none of sam2.1's sizes ({', '.join(CONFIGS)})")


# Folders ---------------------------------------------------------------------------------------------------------

def read_config(folder: str | Path) -> dict[str, Any]:
    """A transformers folder's config.json (plain JSON)."""
    path = Path(folder) / HF_CONFIG_NAME
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise FormatError(f"{path}: not a readable config.json ({err})") from err
    if not isinstance(config, dict):
        raise FormatError(f"{path}: expected a JSON object")
    return config


def is_hf_folder(folder: str | Path) -> bool:
    """A folder in transformers' layout: config.json of a SAM2 model_type next to model.safetensors."""
    try:
        config = read_config(folder)
    except FormatError:
        return False
    return config.get("model_type") in HF_MODEL_TYPES.values() and (Path(folder) / WEIGHTS_NAME).is_file()


def _expected_hf_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """The keys and shapes of the transformers model `config` describes (Sam2VideoModel or Sam2Model), built on the
    meta device (no memory, no init cost)."""
    # lazy: transformers only for its layout (seconds to import)
    from transformers import Sam2Model, Sam2VideoModel

    with torch.device("meta"):
        model = (Sam2VideoModel if config.model_type == "sam2_video" else Sam2Model)(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_against(state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], side: str) -> None:
    """Raise FormatError unless `state` has exactly the keys and shapes of `expected` (the target model's)."""
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k]))
    if missing or extra or shapes:
        parts = [f"{len(v)} {what}: {', '.join(v[:5])}" for what, v in
                 (("missing", missing), ("unused", extra), ("with another shape", shapes)) if v]
        raise FormatError(f"converted state dict does not match {side} — " + "; ".join(parts))


def write_hf_folder(state: Mapping[str, torch.Tensor], size: str, image_size: int, folder: str | Path,
                    video: bool = True) -> Path:
    """config.json, model.safetensors and the processor config of a sam2 state dict, in `folder` (created):
    Sam2VideoModel's (video=True, every tensor) or Sam2Model's (the image part). Checked key by key against
    transformers' model before anything is written."""
    # lazy: transformers only for its layout (seconds to import)
    from transformers import Sam2ImageProcessor, Sam2Processor

    config = hf_config(size, image_size, video)
    if not video:  # Sam2Model has no video memory (what Sam2Model.save_pretrained writes)
        state = {k: v for k, v in state.items() if not k.startswith(SAM2_MEMORY_PREFIXES)}
    hf_state = sam2_to_hf(state)
    check_against(hf_state, _expected_hf_shapes(config), f"transformers' {config.architectures[0]}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.to_json_file(str(folder / HF_CONFIG_NAME))
    save_weights(hf_state, folder / WEIGHTS_NAME, metadata={"format": "pt"})
    low_res = image_size // 4  # the decoder's mask logits, which the processor upsamples
    processor = Sam2Processor(image_processor=Sam2ImageProcessor(
        size={"height": image_size, "width": image_size}, mask_size={"height": low_res, "width": low_res}),
        target_size=image_size)
    processor.save_pretrained(str(folder))
    return folder


def read_hf_folder(folder: str | Path, memory_from: Mapping[str, torch.Tensor] | None = None
                   ) -> tuple[dict[str, torch.Tensor], "Sam2Spec"]:
    """(sam2 state dict, Sam2Spec) of a transformers-format SAM2 folder.

    A `Sam2Model.save_pretrained` folder (model_type "sam2", what a fine-tune with transformers gives) holds the
    image part only; its video-memory tensors then come from `memory_from` (the sam2 model being loaded into, as
    initialised), with a warning: image prediction, evaluation and the app never use them. Anything else missing
    fails later, key by key, in check_keys.
    """
    folder = Path(folder)
    config = read_config(folder)
    spec = spec_from_hf_config(config, str(folder / HF_CONFIG_NAME))
    state = hf_to_sam2(load_weights(folder / WEIGHTS_NAME))
    if config["model_type"] == "sam2" and not any(k.startswith(SAM2_MEMORY_PREFIXES) for k in state):
        if memory_from is None:
            raise FormatError(f"{folder}: an image-only transformers Sam2Model checkpoint has no video-memory weights")
        warnings.warn(f"{folder.name}: an image-only transformers Sam2Model checkpoint; sam2's video-memory modules "
                      "keep their initial weights (image prediction does not use them)", stacklevel=2)
        state.update({k: v for k, v in memory_from.items() if k.startswith(SAM2_MEMORY_PREFIXES)})
    return state, spec


def sam2_weights(folder: str | Path) -> Path:
    """sam2's weights in a model folder: SAM2_WEIGHTS_NAME in a repo pushed in the official layout, else
    model.safetensors (a run folder, or a repo pushed before that layout)."""
    own = Path(folder) / SAM2_WEIGHTS_NAME
    return own if own.is_file() else Path(folder) / WEIGHTS_NAME


def stage_repo(run_dir: str | Path, out_dir: str | Path) -> Path:
    """push of a sam2 / sam2-video run: out_dir (already holding the run's files) in the official layout — the
    run's sam2 weights move to SAM2_WEIGHTS_NAME, and transformers' config.json, model.safetensors and processor
    config take the root, the model type following the run's kind."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    path = run_dir / MODEL_CONFIG_NAME
    data = yaml.safe_load(path.read_text()) or {}
    kind = data.get("kind", "sam2")
    if kind not in HF_MODEL_TYPES:
        raise FormatError(f"{path}: a {kind!r} model has no transformers counterpart")
    spec = Sam2Spec.from_dict({**data, "kind": "sam2"}, str(path))
    shutil.copy2(run_dir / WEIGHTS_NAME, out_dir / SAM2_WEIGHTS_NAME)
    return write_hf_folder(load_weights(run_dir / WEIGHTS_NAME), spec.size, spec.image_size, out_dir,
                           video=kind == "sam2-video")
