"""The loss of one micro-batch of clips: sam2's SAM2Train tracking over the frames, sam2's multi-step loss.

SAM2Train.forward encodes every frame, samples the first frame's prompt (mask, click or box) and the corrective
clicks, and tracks with memory. Here the frame encoding comes from the feature cache when the image encoder is
frozen (its FPN levels per (clip, frame, view); the position encodings, the same for every frame of a size, once
per resolution), then SAM2Train's own prepare_prompt_inputs and forward_tracking run unchanged, and
training.loss_fns.MultiStepMultiMasksAndIous scores every frame and every correction step.
"""

from __future__ import annotations

import numpy as np
import torch
from training.loss_fns import MultiStepMultiMasksAndIous
from training.trainer import CORE_LOSS_KEY
from training.utils.data_utils import Frame, Object, VideoDatapoint, collate_fn

from trainer.engine.feature_cache import FeatureCache
from trainer.sam2_model.forward import encode_images, preprocess
from trainer.video.batches import ClipItem


def collate(items: list[ClipItem]):
    """sam2's BatchedVideoDatapoint of the clips' masks (frames are encoded apart: a placeholder image batch)."""
    points = [VideoDatapoint(frames=[Frame(torch.zeros(1, 1, 1), [Object(n, t, item.masks[t, n])
                                                                   for n in range(item.masks.shape[1])])
                                     for t in range(len(item.frames))], video_id=item.index,
                             size=tuple(item.masks.shape[-2:])) for item in items]
    return collate_fn(points, dict_key="clips")


class VideoObjective(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, weight_dict: dict[str, float], cache: FeatureCache | None = None):
        super().__init__()
        self.model = model
        # sam2's MOSE fine-tune loss settings
        self.loss = MultiStepMultiMasksAndIous(dict(weight_dict), supervise_all_iou=True, iou_use_l1_loss=True,
                                               pred_obj_scores=True, focal_gamma_obj_score=0.0,
                                               focal_alpha_obj_score=-1.0)
        self.cache = cache
        self._positions: dict[tuple, list[torch.Tensor]] = {}

    def encode(self, items: list[ClipItem]) -> dict[str, list[torch.Tensor]]:
        """forward_image of every frame, in BatchedVideoDatapoint's flat order (clip-major)."""
        model = self.model
        device = next(model.parameters()).device
        images = [frame for item in items for frame in item.frames]
        keys = [key for item in items for key in item.cache_keys()]
        run = lambda rows: encode_images(model, preprocess(model, [images[r] for r in rows]).to(device))
        if self.cache is not None and None not in keys:
            # outside autocast: torch.cat of the cache's float16 entries fails under CPU bf16 autocast
            with torch.autocast(device.type, enabled=False):
                fpn = self.cache.get_batch(keys, run)["backbone_fpn"]
        else:
            with torch.set_grad_enabled(torch.is_grad_enabled() and any(
                    p.requires_grad for p in model.image_encoder.parameters())):
                fpn = run(list(range(len(images))))["backbone_fpn"]
        fpn = list(fpn)
        if model.use_high_res_features_in_sam:  # forward_image's second half: mask-decoder weights, they train
            fpn[0] = model.sam_mask_decoder.conv_s0(fpn[0])
            fpn[1] = model.sam_mask_decoder.conv_s1(fpn[1])
        return {"backbone_fpn": fpn, "vision_pos_enc": [p.expand(len(images), -1, -1, -1) for p in self.positions(fpn)]}

    def positions(self, fpn: list[torch.Tensor]) -> list[torch.Tensor]:
        """The neck's sine position encodings of each level: depend on the level's size only, computed once."""
        key = tuple(tuple(level.shape[-2:]) for level in fpn)
        if key not in self._positions:
            encode = self.model.image_encoder.neck.position_encoding
            with torch.no_grad():
                self._positions[key] = [encode(level[:1]).to(level.dtype) for level in fpn]
        return self._positions[key]

    def forward(self, items: list[ClipItem], seed: int) -> torch.Tensor:
        """Summed over frames and correction steps, per object (sam2's normalisation), for this micro-batch."""
        model = self.model
        device = next(model.parameters()).device
        batch = collate(items).to(device)
        backbone_out = self.encode(items)
        model.rng = np.random.default_rng(seed)  # SAM2Train's prompt choices: seeded per step (resume, DDP)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)  # its click positions and dropout
            backbone_out = model.prepare_prompt_inputs(backbone_out, batch)
            outputs = model.forward_tracking(backbone_out, batch)
        return self.loss(outputs, batch.masks)[CORE_LOSS_KEY]
