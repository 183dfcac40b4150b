"""Training clips at model resolution, and which of them each step (and each process) sees.

As the SAM2 trainer's TrainingImages (trainer/engine/images.py), with a clip in place of an image: every random
choice comes from (seed, step, clip), so resumed, multi-process and uninterrupted runs draw the same. A clip has a
fixed number of augmented *views* (frozen, cached encoder; the draw is TrainingImages' `SeededViews`): a view fixes
its window of --frames frames and one augmentation draw for all of them (trainer/augment.py), so each frame's
features are computed once per view; the engine's bounded cache keys them by a digest of the model-input frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trainer.augment import Policy, augment, policy
from trainer.data.clips import clip_length
from trainer.data.sample import DataError, SegmentationDataset
from trainer.engine.feature_cache import image_key
from trainer.engine.images import FRESH, SeededViews, resized_image


@dataclass
class ClipItem:
    index: int  # the clip in the training split
    view: int  # the augmented view (with its window), or FRESH
    start: int  # the window's first frame in the clip
    frames: list[np.ndarray]  # T images S x S x 3 uint8
    masks: torch.Tensor  # T x k x S x S bool: the k objects chosen this step (empty where an object is out of view)

    def cache_keys(self) -> list[str | None]:
        """The feature cache's keys (digests of the model-input frames); None for a fresh draw, never reused."""
        if self.view == FRESH:
            return [None] * len(self.frames)
        return [image_key(frame) for frame in self.frames]


def to_model_size(frames: list[np.ndarray], masks: np.ndarray, size: int) -> tuple[list[np.ndarray], torch.Tensor]:
    """Frames bilinear, masks (T x N x H x W; area > half a pixel) at S x S; empty masks stay (out of view)."""
    frames = [resized_image(f, size, size) for f in frames]
    resized = F.interpolate(torch.from_numpy(np.ascontiguousarray(masks)).float(), size=(size, size),
                            mode="bilinear", align_corners=False) > 0.5
    return frames, resized


class TrainingClips(SeededViews):
    """The training split as the steps see it: clip `pos` in view `view`, --frames frames at model resolution."""

    def __init__(self, dataset: SegmentationDataset, size: int, frames: int, policy: Policy, seed: int,
                 views: int = 0):
        self.lengths = [clip_length(ref) for ref in dataset.refs]  # from the listing: nothing decoded
        short = [dataset.sources[i] for i, n in enumerate(self.lengths) if n < frames]
        if len(short) == len(self.lengths):
            raise DataError(dataset.root or "dataset", f"every training clip has fewer than --frames {frames} "
                                                       f"annotated frames (e.g. {short[0]})")
        super().__init__([i for i, n in enumerate(self.lengths) if n >= frames], policy, seed, views)
        self.dataset, self.size, self.frames = dataset, size, frames

    @classmethod
    def for_run(cls, dataset: SegmentationDataset, cfg) -> "TrainingClips":
        return cls(dataset, cfg.image_size, cfg.frames, policy(cfg.augment), cfg.seed).cached_views(cfg, cfg.frames)

    def item(self, pos: int, step: int, seed: int, max_objects: int) -> ClipItem:
        index, view, gen = self.draw(pos, step, seed)
        draw = self.view_seed(index, view, step)
        start = int(np.random.default_rng(draw).integers(self.lengths[index] - self.frames + 1))
        clip = self.dataset[index]
        window = slice(start, start + self.frames)
        try:
            frames, masks, kept = augment(clip.frames[window], list(clip.masks[window]), self.policy, draw)
        except ValueError:  # trainer/augment.py's keep_visible fails on a draw that left no object at all
            kept = []
        if len(kept) == 0:  # no object visible at the window's start after the draw: the clip from its first frame
            start, window = 0, slice(0, self.frames)
            frames, masks = clip.frames[window], list(clip.masks[window])
            kept = np.arange(clip.masks.shape[1])
        frames, resized = to_model_size(frames, np.stack(masks), self.size)
        visible = np.flatnonzero(resized[0].flatten(1).any(1).numpy())  # prompts need the object on frame 0
        chosen = visible[torch.randperm(len(visible), generator=gen)[:max_objects].sort().values.numpy()]
        return ClipItem(index, view, start, frames, resized[:, chosen])
