"""Bounds on what a saved model config may ask for, checked before anything is built from it.

A model folder's config (model_config.yaml, a Hub repo anyone can publish) sizes tensors: a sam2 `image_size` of
8192 makes every embedding 64x the pretrained one's, a semantic head of 100,000 channels or a detectron2 cfg with
huge channel counts or test sizes takes many GB before the first image. The spec loaders call these checks; the
Space (demo/hub_guard.py) calls them again with its own, smaller image-size bounds.
"""

from __future__ import annotations

from typing import Any, Sequence

from trainer.checkpoint import CheckpointError

IMAGE_STRIDE = 32  # sam2's backbone stride x 2: every input size is a multiple
MAX_IMAGE_SIZE = 2048  # sam2 was trained at 1024; twice that is already 4x its memory
MAX_CLASSES = 1024  # semantic classes or detectron2 NUM_CLASSES
MAX_DECODER_BLOCKS = 6  # the semantic UNet head's upsampling blocks
MAX_DECODER_CHANNELS = 1024  # each block's channels (the default head is [128, 64, 32])
MAX_D2_TEST_SIZE = 4096  # detectron2's INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST
# detectron2 cfg keys that size layers or per-image work, with their bounds (well above detectron2's defaults)
D2_BOUNDS = {
    "MODEL.RESNETS.STEM_OUT_CHANNELS": 256,
    "MODEL.RESNETS.RES2_OUT_CHANNELS": 1024,
    "MODEL.RESNETS.WIDTH_PER_GROUP": 256,
    "MODEL.RESNETS.NUM_GROUPS": 64,
    "MODEL.FPN.OUT_CHANNELS": 1024,
    "MODEL.ROI_BOX_HEAD.FC_DIM": 4096,
    "MODEL.ROI_BOX_HEAD.CONV_DIM": 1024,
    "MODEL.ROI_BOX_HEAD.NUM_FC": 8,
    "MODEL.ROI_BOX_HEAD.NUM_CONV": 8,
    "MODEL.ROI_MASK_HEAD.CONV_DIM": 1024,
    "MODEL.ROI_MASK_HEAD.NUM_CONV": 16,
    "MODEL.ROI_HEADS.NUM_CLASSES": MAX_CLASSES,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 10000,
    "MODEL.RPN.POST_NMS_TOPK_TEST": 5000,
    "TEST.DETECTIONS_PER_IMAGE": 1000,
}


def check_image_size(value: Any, source: str, limit: int = MAX_IMAGE_SIZE) -> int:
    """A sam2 input size: a positive multiple of IMAGE_STRIDE, at most `limit`."""
    size = _integer(value, "image_size", source)
    if not 0 < size <= limit or size % IMAGE_STRIDE:
        raise CheckpointError(f"{source}: image_size {size} is outside 32..{limit} or not a multiple of "
                              f"{IMAGE_STRIDE}")
    return size


def check_semantic_head(channels: Sequence[Any], num_classes: int, source: str) -> list[int]:
    """The semantic head's decoder channels, bounded, and the class count."""
    if not isinstance(channels, (list, tuple)) or not 0 < len(channels) <= MAX_DECODER_BLOCKS:
        raise CheckpointError(f"{source}: decoder_channels must list 1..{MAX_DECODER_BLOCKS} channel counts")
    sizes = [_integer(c, "decoder_channels", source) for c in channels]
    if not all(0 < c <= MAX_DECODER_CHANNELS for c in sizes):
        raise CheckpointError(f"{source}: decoder_channels {sizes}: each must be 1..{MAX_DECODER_CHANNELS}")
    if num_classes > MAX_CLASSES:
        raise CheckpointError(f"{source}: {num_classes} classes; at most {MAX_CLASSES}")
    return sizes


def check_d2_cfg(cfg: Any, source: str, max_test_size: int = MAX_D2_TEST_SIZE) -> None:
    """A detectron2 CfgNode's layer sizes and test sizes within bounds (a missing key is detectron2's default)."""
    bounds = {**D2_BOUNDS, "INPUT.MAX_SIZE_TEST": max_test_size}
    for key, limit in bounds.items():
        node = cfg
        for part in key.split("."):
            node = node.get(part) if hasattr(node, "get") else None
        if node is not None and not 0 <= _integer(node, key, source) <= limit:
            raise CheckpointError(f"{source}: {key} = {node} is over this kit's limit of {limit}")
    tests = cfg.get("INPUT", {}).get("MIN_SIZE_TEST") if hasattr(cfg, "get") else None
    for size in (tests if isinstance(tests, (list, tuple)) else [tests] if tests is not None else []):
        if not 0 <= _integer(size, "INPUT.MIN_SIZE_TEST", source) <= max_test_size:
            raise CheckpointError(f"{source}: INPUT.MIN_SIZE_TEST = {size} is over this kit's limit of "
                                  f"{max_test_size}")


def _integer(value: Any, name: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise CheckpointError(f"{source}: {name} must be a whole number, got {value!r}")
    return int(value)
