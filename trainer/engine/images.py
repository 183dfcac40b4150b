"""Training samples at model resolution, and which of them each step (and each process) sees.

Every random choice about a sample — its augmentation, which objects, its prompts — comes from a generator seeded
by (seed, step, sample index): a 2-process run, a resumed run and a single uninterrupted run draw the same.

Samples are decoded, augmented (trainer/augment.py) and resized when a step needs them; nothing holds the
training set in memory. With a frozen, cached image encoder a sample has a fixed number of augmented *views*
(each seeded by (seed, sample, view)): a step draws one of them, so its features are computed once and reused,
while the masks (cheap) are rebuilt from the same seed. A trained encoder gets a fresh augmentation every step.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from trainer.augment import Policy, augment, policy
from trainer.data.instances import InstanceMasks
from trainer.data.sample import DataError, Sample, SegmentationDataset
from trainer.engine.feature_cache import image_key, view_bytes
from trainer.engine.sampling import sample_seed

FRESH = -1  # the view of an item augmented afresh for its step (not cached)
# --cache-views 0 (the default) asks for as many views per sample as leave each one drawn about VIEW_REUSE times over
# the run, at most AUTO_VIEWS: the first draw of a view pays an encoder pass, the later ones are cache hits.
VIEW_REUSE, AUTO_VIEWS = 3, 8
CANDIDATES_PER_OBJECT = 4  # objects augmented per object a step trains on: enough survive a zoomed-in crop


@dataclass
class Item:
    index: int
    view: int  # which of the sample's augmented views (the feature cache's key); FRESH: drawn for this step only
    image: np.ndarray  # S x S x 3 uint8 (sam2 resizes to a square, ignoring aspect ratio)
    masks: torch.Tensor  # k x 1 x S x S bool, the objects chosen this step
    generator: torch.Generator  # this sample's prompt randomness for this step

    @property
    def cache_key(self) -> str | None:
        """The feature cache's key (a digest of the model-input image); None for a fresh draw, never reused."""
        return None if self.view == FRESH else image_key(self.image)


def resized_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An H x W x 3 uint8 image, bilinear, at width x height (every trainer's image resize)."""
    return np.array(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def to_model_size(image: np.ndarray, masks: np.ndarray, size: int) -> tuple[np.ndarray, torch.Tensor]:
    """The image bilinear and its masks (area > half a pixel) at S x S; masks left empty by the resize dropped.
    Masks are resized one at a time: a float copy of all of them at once is 4 bytes per pixel per object."""
    image = resized_image(image, size, size)
    resized = torch.zeros(len(masks), size, size, dtype=torch.bool)
    for i, mask in enumerate(masks):
        mask = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
        resized[i] = F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False)[0, 0] > 0.5
    return image, resized[resized.flatten(1).any(1)]


def shrink(image: np.ndarray, masks: InstanceMasks, longest: int) -> tuple[np.ndarray, InstanceMasks]:
    """The image (bilinear) and masks (nearest) with their longer side at most `longest` pixels: the detail above
    what the model will see after the largest zoom is lost anyway, and a 4096-px image costs 16x a 1024-px one."""
    h, w = image.shape[:2]
    if max(h, w) <= longest:
        return image, masks
    nh, nw = max(1, round(h * longest / max(h, w))), max(1, round(w * longest / max(h, w)))
    return resized_image(image, nw, nh), masks.resized(nh, nw)


class SeededViews:
    """Training samples (images or clips) with a fixed number of seeded augmented views each (a frozen, cached
    encoder) or, with views=0, a fresh augmentation every step: which view a step draws, and the seed of its
    augmentation. TrainingImages and the video trainer's TrainingClips both draw this way."""

    def __init__(self, indices: list[int], policy: Policy, seed: int, views: int = 0):
        self.indices, self.policy, self.seed = indices, policy, seed
        self.set_views(views)

    def set_views(self, views: int) -> None:
        self.views = 1 if self.policy.identity and views else views  # an identity policy has one view to cache

    def __len__(self) -> int:
        return len(self.indices)

    def cached_views(self, cfg, frames: int = 1) -> "SeededViews":
        """These samples with the views a run's config asks for (run_views; `frames` model inputs per view)."""
        self.set_views(run_views(cfg, len(self), frames))
        return self

    def draw(self, pos: int, step: int, seed: int) -> tuple[int, int, torch.Generator]:
        """The sample index, its view and its generator for this step."""
        index = self.indices[pos]
        gen = torch.Generator().manual_seed(sample_seed(seed, step, index))
        return index, int(torch.randint(self.views, (1,), generator=gen)) if self.views else FRESH, gen

    def view_seed(self, index: int, view: int, step: int) -> int:
        """The augmentation's seed: a cached view's draw is fixed by (index, view), a fresh one by the step."""
        return sample_seed(self.seed, index, view) if view != FRESH else sample_seed(self.seed, step, index, 7)


class TrainingImages(SeededViews):
    """The training split as the steps see it: sample `pos` in augmented view `view`, at model resolution."""
    keeps_empty = False  # images without objects: dropped here (nothing to prompt); the semantic trainer keeps them

    def __init__(self, dataset: SegmentationDataset, size: int, policy: Policy, seed: int, views: int = 0,
                 progress: bool = True):
        super().__init__(usable_indices(dataset, progress, self.keeps_empty), policy, seed, views)
        self.dataset, self.size = dataset, size

    @classmethod
    def for_run(cls, dataset: SegmentationDataset, cfg, progress: bool = True) -> "TrainingImages":
        """As a trainer's config asks: its --augment level, and --cache-views views when features are cached."""
        return cls(dataset, cfg.image_size, policy(cfg.augment), cfg.seed, progress=progress).cached_views(cfg)

    def prepared(self, index: int, limit: int = 0,
                 generator: torch.Generator | None = None) -> tuple[Sample, np.ndarray, InstanceMasks, np.ndarray]:
        """The sample, its image and masks shrunk to what the model can use after the policy's largest zoom, and
        at most `limit` of its objects (a random choice; 0 = all) with their indices: an image of 400 cells
        never becomes 400 full-size masks."""
        sample = self.dataset[index]
        image, masks = shrink(sample.image, sample.masks, math.ceil(self.size * max(1.0, self.policy.scale[1])))
        picked = np.arange(len(masks))
        if 0 < limit < len(masks):
            picked = torch.randperm(len(masks), generator=generator)[:limit].sort().values.numpy()
            masks = masks[picked]
        return sample, image, masks, picked

    def augmented(self, index: int, view: int, step: int, limit: int = 0, generator: torch.Generator | None = None
                  ) -> tuple[Sample, np.ndarray, np.ndarray, np.ndarray]:
        """The sample and its augmented image, masks (N x H x W) and the kept objects' indices into the sample's
        (see `prepared` for the size and `limit`)."""
        sample, image, masks, picked = self.prepared(index, limit, generator)
        frames, out, kept = self.augment_view(index, view, step, image, masks)
        return sample, frames, out, picked[kept]

    def augment_view(self, index: int, view: int, step: int, image: np.ndarray, masks: InstanceMasks
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One prepared image and its masks through the policy: a cached view's draw is fixed by (index, view), a
        fresh one by the step. Returns the image, masks (N x H x W) and the indices of the objects kept."""
        frames, out, kept = augment([image], [masks.dense()], self.policy, self.view_seed(index, view, step))
        return frames[0], out[0], kept

    def item(self, pos: int, step: int, seed: int, max_objects: int) -> Item:
        index, view, gen = self.draw(pos, step, seed)
        _, plain_image, plain, _ = self.prepared(index, CANDIDATES_PER_OBJECT * max_objects, gen)
        image, masks, _ = self.augment_view(index, view, step, plain_image, plain)
        image, resized = to_model_size(image, masks, self.size)
        if len(resized) == 0:  # the draw left no object: this view is the plain image (decoded once, kept above)
            image, resized = to_model_size(plain_image, plain, self.size)
        chosen = torch.randperm(len(resized), generator=gen)[:max_objects].sort().values
        return Item(index, view, image, resized[chosen][:, None], gen)


def run_views(cfg, samples: int, frames: int = 1) -> int:
    """Cached augmented views per sample for a run (0: none, the encoder is not cached): --cache-views, or with 0
    (auto) enough that each view is drawn ~VIEW_REUSE times over the run's draws (steps x batch x accumulation),
    1 to AUTO_VIEWS, and without a disk tier no more than the RAM budget holds for every sample at once (beyond
    it the least recently used view is gone before its next draw)."""
    if not cfg.cache_features:
        return 0
    if cfg.cache_views:
        return cfg.cache_views
    draws = cfg.steps * cfg.batch_size * cfg.grad_accum / max(1, samples)
    views = min(AUTO_VIEWS, max(1, int(draws // VIEW_REUSE)))
    if cfg.cache_budget and not cfg.cache_dir:
        fits = int(cfg.cache_budget * 2**20 // (max(1, samples) * frames * view_bytes(cfg.image_size)))
        views = min(views, max(1, fits))
    return views


def usable_indices(dataset: SegmentationDataset, progress: bool = True, keep_empty: bool = False) -> list[int]:
    """Indices of the images to train on: those with an object, or all with keep_empty (they teach the
    background); a split with no object at all is refused. The data check's counts are used where it made them,
    so a checked dataset is not decoded again."""
    counts = [ref.num_objects for ref in dataset.refs]
    objects = [count > 0 if count >= 0 else has_objects(dataset[i])
               for i, count in enumerate(tqdm(counts, desc="counting objects", disable=not progress, leave=False))]
    if not any(objects):
        raise DataError(dataset.root or "dataset", f"none of its {len(dataset)} training images has an object mask")
    if not all(objects):
        warnings.warn(f"{objects.count(False)} training image(s) have no objects: " +
                      ("they train the background only" if keep_empty else "not used for training"), stacklevel=2)
    return [i for i, has in enumerate(objects) if has or keep_empty]


def has_objects(sample: Sample) -> bool:
    return sample.num_objects > 0


def make_items(images: TrainingImages, positions: list[int], step: int, seed: int, max_objects: int) -> list[Item]:
    return [images.item(pos, step, seed, max_objects) for pos in positions]
