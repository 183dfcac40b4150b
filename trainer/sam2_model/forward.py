"""SAM2's image path split at the point where a frozen encoder can be cached.

    encode_images   image_encoder only (cacheable when frozen)
    image_features  the decoder's conv_s0/conv_s1 projections + no_mem_embed, as SAM2ImagePredictor.set_image does
    decode          prompt encoder + mask decoder for N objects, each with its own image's features: one PointDecoder
                    (point_decoder.py) for the whole micro-batch when every image has K objects (training pads to
                    that), else one per image; either way the image is never copied per object

sam2's `forward_image` applies conv_s0/conv_s1 (mask-decoder weights) inside the encoder call; we apply them
after the cache instead, so a trainable mask decoder still trains them when the encoder is frozen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from sam2.utils.transforms import SAM2Transforms

from trainer.sam2_model.point_decoder import PointDecoder

Encoded = dict[str, list[torch.Tensor]]  # {"backbone_fpn": [...], "vision_pos_enc": [...]} as image_encoder returns


@dataclass
class Features:
    image_embed: torch.Tensor  # B x C x S/16 x S/16
    high_res: list[torch.Tensor]  # [B x C/8 x S/4 x S/4, B x C/4 x S/8 x S/8]
    owner: torch.Tensor | None = None  # the image row of each object (select); None: row i is object i's image
    per_image: list[int] | None = None  # objects of each image, image-major (for_objects): no owner needed

    def select(self, image_index: torch.Tensor) -> "Features":
        """The features of the image each object belongs to, by reference: nothing is copied per object."""
        return Features(self.image_embed, self.high_res, image_index)

    def for_objects(self, per_image: list[int]) -> "Features":
        """The features for per_image[i] objects of image i, image-major: one decoder call when they are all equal
        (padded: a fixed shape), one per image otherwise."""
        return Features(self.image_embed, self.high_res, per_image=per_image)

    def image(self, row: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.image_embed[row:row + 1], [f[row:row + 1] for f in self.high_res]


@functools.lru_cache(maxsize=4)
def _transforms(resolution: int):
    return SAM2Transforms(resolution=resolution, mask_threshold=0.0)


def preprocess(model: torch.nn.Module, images: list[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 images -> B x 3 x S x S normalised tensor, exactly as SAM2ImagePredictor does it."""
    return _transforms(model.image_size).forward_batch(images)


def encode_images(model: torch.nn.Module, batch: torch.Tensor) -> Encoded:
    """The image encoder's multi-scale output for a preprocessed batch."""
    out = model.image_encoder(batch)
    return {"backbone_fpn": list(out["backbone_fpn"]), "vision_pos_enc": list(out["vision_pos_enc"])}


def image_features(model: torch.nn.Module, encoded: Encoded) -> Features:
    """What SAM2ImagePredictor.set_image stores, computed from the encoder output (forward_image's second half)."""
    fpn = list(encoded["backbone_fpn"])
    if model.use_high_res_features_in_sam:
        fpn[0] = model.sam_mask_decoder.conv_s0(fpn[0])
        fpn[1] = model.sam_mask_decoder.conv_s1(fpn[1])
    levels = fpn[-model.num_feature_levels:]
    embed = levels[-1]
    if model.directly_add_no_mem_embed:  # image-only training adds the "no memory" embedding, like the predictor
        embed = embed + model.no_mem_embed.view(1, -1, 1, 1)
    return Features(embed, levels[:-1])


def image_rows(per_image: list[int]) -> list[slice]:
    """The rows of each image's objects in an image-major batch of per_image[i] objects per image."""
    ends = np.cumsum(per_image).tolist()
    return [slice(end - n, end) for n, end in zip(per_image, ends)]


def decode(model: torch.nn.Module, feats: Features, coords: torch.Tensor, labels: torch.Tensor,
           mask_input: torch.Tensor | None, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-res mask logits (N x M x S/4 x S/4) and predicted IoUs (N x M) for N objects, as sam2's MaskDecoder gives
    them (its training-mode outputs when the model trains).

    coords are in model-input pixels (0..image_size); labels 1/0 points, 2/3 box corners, -1 padding.
    """
    if feats.per_image is not None:  # no host sync: the layout is known without looking at the data
        if len(set(feats.per_image)) == 1:
            return PointDecoder(model, feats.image_embed, feats.high_res)(coords, labels, multimask,
                                                                          mask_input=mask_input)[:2]
        rows = image_rows(feats.per_image)
        outputs = [PointDecoder(model, *feats.image(i))(coords[r], labels[r], multimask,
                                                         mask_input=None if mask_input is None else mask_input[r])
                   for i, r in enumerate(rows)]
        return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])
    owner = feats.owner if feats.owner is not None else torch.arange(len(coords), device=coords.device)
    rows = [torch.nonzero(owner == image)[:, 0] for image in torch.unique(owner).tolist()]
    outputs = [PointDecoder(model, *feats.image(int(owner[r[0]])))(
        coords[r], labels[r], multimask, mask_input=None if mask_input is None else mask_input[r])[:2] for r in rows]
    order = torch.cat(rows)
    low_res, iou = torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])
    if not torch.equal(order, torch.arange(len(order), device=order.device)):  # objects not grouped by image
        inverse = torch.argsort(order)
        low_res, iou = low_res[inverse], iou[inverse]
    return low_res, iou
