"""Training samples at model resolution, and which of them each step (and each process) sees.

Every random choice about a sample — flip, which objects, its prompts — comes from a generator seeded by
(seed, step, sample index): a 2-process run, a resumed run and a single uninterrupted run draw the same.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from trainer.data.sample import DataError, SegmentationDataset


@dataclass
class Resized:
    image: np.ndarray  # S x S x 3 uint8 (sam2 resizes to a square, ignoring aspect ratio)
    masks: torch.Tensor  # K x S x S bool, non-empty masks only


@dataclass
class Item:
    index: int
    flip: bool
    image: np.ndarray  # S x S x 3 uint8, flipped if `flip`
    masks: torch.Tensor  # k x 1 x S x S bool, the objects chosen this step
    generator: torch.Generator  # this sample's prompt randomness for this step

    @property
    def cache_key(self) -> tuple[int, bool]:
        return (self.index, self.flip)


def resize_dataset(dataset: SegmentationDataset, size: int, progress: bool = True) -> list[tuple[int, Resized]]:
    """Load every sample once at model resolution; images without any (non-empty) object are dropped."""
    from PIL import Image

    out, empty = [], 0
    for index, sample in enumerate(tqdm(dataset, desc="loading data", disable=not progress, leave=False)):
        image = np.array(Image.fromarray(sample.image).resize((size, size), Image.BILINEAR))
        masks = torch.from_numpy(sample.masks).float()[:, None]
        masks = F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False)[:, 0] > 0.5
        masks = masks[masks.flatten(1).any(1)] if len(masks) else masks[:, 0]
        if len(masks) == 0:
            empty += 1
            continue
        out.append((index, Resized(image, masks)))
    if not out:
        raise DataError(dataset.root or "dataset", f"none of its {len(dataset)} training images has an object mask")
    if empty:
        warnings.warn(f"{empty} training image(s) have no objects and are not used for training", stacklevel=2)
    return out


def sample_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def step_indices(n: int, batch: int, step: int, micro: int, grad_accum: int, seed: int) -> list[int]:
    """The global batch of micro-step `micro` of `step`: positions in an endless stream of seeded epochs."""
    start = (step * grad_accum + micro) * batch
    out = []
    for pos in range(start, start + batch):
        epoch, offset = divmod(pos, n)
        out.append(int(np.random.default_rng(sample_seed(seed, epoch)).permutation(n)[offset]))
    return out


def make_items(data: list[tuple[int, Resized]], positions: list[int], step: int, seed: int, max_objects: int,
               hflip: bool) -> list[Item]:
    items = []
    for pos in positions:
        index, sample = data[pos]
        gen = torch.Generator().manual_seed(sample_seed(seed, step, index))
        flip = bool(hflip and torch.rand(1, generator=gen).item() < 0.5)
        chosen = torch.randperm(len(sample.masks), generator=gen)[:max_objects].sort().values
        masks, image = sample.masks[chosen], sample.image
        if flip:
            masks, image = masks.flip(-1), np.ascontiguousarray(image[:, ::-1])
        items.append(Item(index, flip, image, masks[:, None], gen))
    return items


def rank_slice(indices: list[int], rank: int, world: int) -> list[int]:
    if len(indices) % world:
        raise ValueError(f"--batch-size {len(indices)} must be divisible by the number of processes ({world})")
    per = len(indices) // world
    return indices[rank * per:(rank + 1) * per]
