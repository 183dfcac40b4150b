"""The semantic model: sam2's own image encoder (Hiera trunk + FPN neck) under a UNet-style head, no prompts.

    image -> sam2 preprocessing -> image_encoder -> FPN levels at strides 4, 8, 16 (256 channels each)
          -> UNet decoder (smp's UnetDecoderBlock: upsample, concat the next FPN level, 2 x conv-BN-ReLU)
             16 -> 8 (+ stride-8 level) -> 4 (+ stride-4 level) -> 2 -> 1
          -> smp's SegmentationHead: per-class logits at the input size

The stride-32 trunk level is not used: sam2's FPN already folds it into the stride-16 level (top-down), and at
the small sizes this kit trains on it is 4x4 pixels.

Weights: the encoder comes from the same places as the SAM2 trainer's (trainer.sam2_model.model.build_model: official
sam2.1 checkpoints, a SAM2 run folder or Hub repo of ours, or random init); the head starts fresh. A trained model is
saved as one safetensors file (keys image_encoder.* and head.*) with model_config.yaml (SemanticSpec).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.base.heads import SegmentationHead
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoderBlock

from trainer.checkpoint import WEIGHTS_NAME, CheckpointError, check_keys, load_weights
from trainer.model_limits import check_image_size, check_semantic_head
from trainer.sam2_model.forward import preprocess
from trainer.sam2_model.model import CONFIGS, Sam2Spec
from trainer.sam2_model.model import build_model as build_sam2_model
from trainer.sam2_model.model import load_spec
from trainer.semantic.labels import class_colors


@dataclass
class SemanticSpec:
    """Everything needed to rebuild the architecture (model_config.yaml next to the weights)."""

    class_names: list[str]  # background first
    size: str = "tiny"
    image_size: int = 1024
    decoder_channels: list[int] = field(default_factory=lambda: [128, 64, 32])
    kind: str = "semantic"

    @property
    def colors(self) -> list[str]:
        return class_colors(len(self.class_names))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "class_colors": self.colors}  # colours: for readers (cards, other tools)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model_config") -> "SemanticSpec":
        if data.get("kind") != "semantic":
            raise CheckpointError(f"{source}: this is a {data.get('kind')!r} model, not a semantic model")
        if data.get("size") not in CONFIGS:
            raise CheckpointError(f"{source}: unknown sam2 size {data.get('size')!r}; expected one of {list(CONFIGS)}")
        names = data.get("class_names")
        if not isinstance(names, list) or len(names) < 2:
            raise CheckpointError(f"{source}: class_names must list background and at least one class")
        return cls(class_names=[str(n) for n in names], size=data["size"],
                   image_size=check_image_size(data.get("image_size"), source),
                   decoder_channels=check_semantic_head(data.get("decoder_channels", [128, 64, 32]), len(names),
                                                        source))


class UNetHead(torch.nn.Module):
    """FPN levels [stride 4, 8, 16] -> per-class logits (B x classes x S x S).

    The stride-8 and stride-4 levels are first projected to 64 and 32 channels (1x1 convs, the sizes of sam2's own
    mask-decoder projections conv_s1/conv_s0): concatenated at 256 channels they made the head heavier than the
    encoder. Then smp's UnetDecoderBlocks upsample from stride 16, one per entry of `channels` (the first two take
    the projected skips, later ones only upsample), and smp's SegmentationHead upsamples the rest of the way.
    """

    SKIPS = (64, 32)  # projected channels of the stride-8 and stride-4 levels

    def __init__(self, num_classes: int, channels: list[int], fpn_channels: int = 256):
        super().__init__()

        self.num_classes = num_classes
        self.project = torch.nn.ModuleList(torch.nn.Conv2d(fpn_channels, c, kernel_size=1) for c in self.SKIPS)
        skips = (*self.SKIPS, 0, 0)[:len(channels)]
        inputs = (fpn_channels, *channels[:-1])
        # No batch norm: each image's logits depend on that image alone, so train and eval agree, batch size and
        # the split over DDP processes do not change the result, and one image is a valid batch.
        self.blocks = torch.nn.ModuleList(UnetDecoderBlock(i, s, o, use_norm=False)
                                          for i, s, o in zip(inputs, skips, channels))
        self.classifier = SegmentationHead(channels[-1], num_classes, kernel_size=3,
                                           upsampling=16 // 2 ** len(channels))

    def forward(self, fpn: list[torch.Tensor]) -> torch.Tensor:
        x = fpn[2]
        skips = [project(level) for project, level in zip(self.project, (fpn[1], fpn[0]))] + [None, None]
        for block, skip in zip(self.blocks, skips):
            height, width = skip.shape[-2:] if skip is not None else (2 * x.shape[-2], 2 * x.shape[-1])
            x = block(x, height, width, skip_connection=skip)
        return self.classifier(x)


class SamUNet(torch.nn.Module):
    """sam2's image_encoder + UNetHead. `image_size` and `image_encoder` are named as on SAM2Base, so the SAM2
    trainer's preprocess / encode_images / feature cache work on it unchanged."""

    def __init__(self, image_encoder: torch.nn.Module, head: UNetHead, image_size: int):
        super().__init__()
        self.image_encoder = image_encoder
        self.head = head
        self.image_size = image_size

    def decode(self, encoded: dict[str, list[torch.Tensor]]) -> torch.Tensor:
        """Logits from the encoder's output (a fresh or a cached one)."""
        return self.head(encoded["backbone_fpn"])

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.head(self.image_encoder(batch)["backbone_fpn"])


def build_sam2(size: str, image_size: int, weights: str | Path | None,
               device: str | torch.device = "cpu") -> torch.nn.Module:
    """The whole SAM2 the encoder is taken from (the automatic-mask baseline uses the rest of it)."""
    return build_sam2_model(Sam2Spec(size, image_size), weights, device=device, train=True)


def from_sam2(sam2: torch.nn.Module, spec: SemanticSpec) -> SamUNet:
    """SAM2's image_encoder (shared, not copied) under a fresh head, on the encoder's device."""
    head = UNetHead(len(spec.class_names), list(spec.decoder_channels))
    return SamUNet(sam2.image_encoder, head, spec.image_size).to(next(sam2.parameters()).device)


def build_model(spec: SemanticSpec, weights: str | Path | None = None,
                device: str | torch.device = "cpu") -> SamUNet:
    """A random-init SamUNet, then `weights` (our model.safetensors of a semantic model: encoder + head)."""
    model = from_sam2(build_sam2(spec.size, spec.image_size, None), spec)
    if weights is not None:
        load_into(model, weights)
    return model.to(device)


def load_into(model: SamUNet, weights: str | Path) -> SamUNet:
    state = load_weights(weights)
    check_keys(model, state, str(weights))
    model.load_state_dict(state)
    return model


class SemanticSegmenter:
    """One RGB image in, a class map out (what the Hub loader returns and the app uses).

    precision: a trainer.precision.Precision for autocast at inference (None = fp32).
    """

    def __init__(self, model: SamUNet, spec: SemanticSpec, precision=None):
        self.model = model
        self.spec = spec
        self.precision = precision

    @property
    def class_names(self) -> list[str]:
        return list(self.spec.class_names)

    @property
    def colors(self) -> list[str]:
        return self.spec.colors

    @torch.inference_mode()
    def logits(self, images: list[np.ndarray]) -> list[torch.Tensor]:
        """Per-class logits (classes x H x W, float32, CPU) for each image at its own size."""
        device = next(self.model.parameters()).device
        autocast = self.precision.autocast() if self.precision is not None else contextlib.nullcontext()
        training = self.model.training  # a model being trained is evaluated in eval mode, then given back
        try:
            with autocast:
                out = self.model.eval()(preprocess(self.model, images).to(device))
        finally:
            self.model.train(training)
        return [F.interpolate(o[None].float(), size=im.shape[:2], mode="bilinear", align_corners=False)[0].cpu()
                for o, im in zip(out, images)]

    def predict(self, image: np.ndarray) -> np.ndarray:
        """H x W int64 class indices into `class_names` (0 = background)."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        return self.logits([image])[0].argmax(0).numpy()


def load_folder(folder: str | Path, device: str | torch.device = "cpu") -> SemanticSegmenter:
    """A trained semantic model from a run folder or a pulled Hub repo (model_config.yaml + model.safetensors)."""
    spec = load_spec(folder, SemanticSpec)
    return SemanticSegmenter(build_model(spec, Path(folder) / WEIGHTS_NAME, device=device), spec)
