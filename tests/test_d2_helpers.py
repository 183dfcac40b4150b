"""Shared settings for the detectron2 tests (no tests here; named test_d2_* to stay in the d2 test files):
a real Mask R-CNN, shrunk so a CPU iteration takes ~0.1-0.5 s."""

from __future__ import annotations

from pathlib import Path

import torch

from trainer.checkpoint import WEIGHTS_NAME, save_weights
from trainer.d2_ft.config import D2TrainConfig
from trainer.d2_ft.model import D2Spec, InstanceSegmenter, build_cfg, build_model, save_spec

# ResNet-18 + GroupNorm (random init), narrow FPN/heads, few proposals: same code paths as the zoo model.
TINY_OPTS = ["MODEL.FPN.OUT_CHANNELS", "64", "MODEL.ROI_BOX_HEAD.FC_DIM", "256",
             "MODEL.ROI_MASK_HEAD.CONV_DIM", "64",
             "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "400", "MODEL.RPN.POST_NMS_TOPK_TRAIN", "100",
             "MODEL.RPN.PRE_NMS_TOPK_TEST", "200", "MODEL.RPN.POST_NMS_TOPK_TEST", "50", "TEST.DETECTIONS_PER_IMAGE", "20"]
SIZE = 128


def tiny_spec(class_names=("vessel", "liquid")) -> D2Spec:
    return D2Spec(class_names=list(class_names), norm="GN", depth=18, freeze_at=0, min_size_train=[SIZE],
                  max_size_train=SIZE, min_size_test=SIZE, max_size_test=SIZE)


def tiny_config(out, **overrides) -> D2TrainConfig:
    base = dict(out=str(out), no_pretrained=True, depth=18, min_size=SIZE, max_size=SIZE, steps=8, lr=0.01, warmup=2,
                roi_batch=32, loader_workers=0, save_every=4, eval_every=0, overlays=1, progress=False,
                val_fraction=0.34, device="cpu", precision="fp32", opts=list(TINY_OPTS))
    base.update(overrides)
    return D2TrainConfig(**base).validate()


def export_tiny_model(folder: Path) -> InstanceSegmenter:
    """A seeded random-init tiny Mask R-CNN, exported to `folder` as the trainer does (model_config.yaml +
    model.safetensors); returns the in-memory segmenter to compare a reloaded one against."""
    torch.manual_seed(0)
    spec = tiny_spec()
    cfg = build_cfg(spec)
    cfg.merge_from_list(TINY_OPTS)
    model = build_model(cfg)
    save_spec(spec, folder, cfg)
    save_weights(model.state_dict(), Path(folder) / WEIGHTS_NAME)
    return InstanceSegmenter(model, cfg, spec.class_names)
