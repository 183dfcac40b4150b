"""Seeded augmentation of an image (or a clip's frames) with its instance masks, shared by the trainers.

sam2's own `training.dataset.transforms` do the flip, the colour jitter and the grayscale, applied consistently
to every frame as sam2's video trainer applies them. What they lack is a random scale + crop that keeps an object
cut by the crop as its partial mask and drops one the crop empties (`scale_crop`), and an affine that warps all of a
frame's masks fast (`affine`: sam2's warps each through grid_sample, which dominates the cost with many objects). Zooming in crops a window of the image; zooming out places the image on a larger canvas filled with its
border colour, so objects come out smaller. Sizes stay native (no resampling here): the trainers resize to the
model's input once, afterwards.

Every random draw comes from `seed` (python's and torch's generators are forked, not disturbed), so the same seed
gives the same augmented sample in any process, on resume, and in the feature cache's views.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

MIN_PIXELS = 20  # an object with fewer visible pixels after the crop is dropped...
MIN_SHARE = 0.1  # ...and so is one that keeps less than this share of its pixels (an ambiguous sliver)


@dataclass(frozen=True)
class Policy:
    scale: tuple[float, float] = (1.0, 1.0)  # zoom range, log-uniform: > 1 objects grow (crop), < 1 shrink (canvas)
    flip: bool = False
    degrees: float = 0.0
    shear: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    grayscale: float = 0.0  # probability

    @property
    def identity(self) -> bool:
        return self == Policy()


POLICIES: dict[str, Policy] = {
    "none": Policy(),
    "flip": Policy(flip=True),  # segkit's only augmentation before augmentation levels existed
    "default": Policy(scale=(0.67, 1.5), flip=True, degrees=10, shear=5, brightness=0.25, contrast=0.25,
                      saturation=0.2, grayscale=0.05),
    # sam2's MOSE fine-tune config: affine 25 deg / shear 20, colour jitter, grayscale 5 %; plus a wider zoom
    "strong": Policy(scale=(0.5, 2.0), flip=True, degrees=25, shear=20, brightness=0.4, contrast=0.4,
                     saturation=0.4, grayscale=0.05),
}
LEVELS = tuple(POLICIES)


def policy(level: str) -> Policy:
    if level not in POLICIES:
        raise ValueError(f"--augment: unknown level {level!r}; choose from {', '.join(LEVELS)}")
    return POLICIES[level]


def augment(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], pol: Policy,
            seed: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Augment a clip (one frame for an image) with one random draw for all of its frames.

    frames: T images HxWx3 uint8 of one size; masks: T arrays N x H x W bool (object n in every frame).
    Returns the frames, the masks of the objects kept, and their indices into the N. An object is kept when it
    stays visible in the first frame (see MIN_PIXELS / MIN_SHARE); the others are dropped from every frame.
    """
    frames, masks = [np.asarray(f) for f in frames], [np.asarray(m, dtype=bool) for m in masks]
    if pol.identity:
        return frames, masks, np.arange(len(masks[0]))
    area = masks[0].sum(axis=(1, 2))
    with _seeded(seed):
        fill = border_colour(frames[0])
        if pol.scale != (1.0, 1.0):
            frames, masks = scale_crop(frames, masks, pol.scale, fill)
            kept = keep_visible(masks, area)
            masks, area = [m[kept] for m in masks], area[kept]
        else:
            kept = np.arange(len(area))
        if pol.degrees or pol.shear:
            frames, masks = affine(frames, masks, pol.degrees, pol.shear, fill)
        frames, masks = _sam2_transforms(frames, masks, pol)
    final = keep_visible(masks, area)
    return frames, [m[final] for m in masks], kept[final]


def keep_visible(masks: list[np.ndarray], original_area: np.ndarray) -> np.ndarray:
    """Indices of the objects still visible enough in the first frame."""
    area = masks[0].sum(axis=(1, 2))
    return np.flatnonzero((area >= MIN_PIXELS) & (area >= MIN_SHARE * np.maximum(original_area, 1)))


def scale_crop(frames: list[np.ndarray], masks: list[np.ndarray], scale: tuple[float, float],
               fill: tuple[int, int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One random zoom and window for every frame: a window of (H, W) / zoom at a random position, padded with
    `fill` (images) / False (masks) where it leaves the image."""
    h, w = frames[0].shape[:2]
    zoom = float(np.exp(random.uniform(np.log(scale[0]), np.log(scale[1]))))
    ch, cw = max(1, round(h / zoom)), max(1, round(w / zoom))
    y0, x0 = random.randint(min(0, h - ch), max(0, h - ch)), random.randint(min(0, w - cw), max(0, w - cw))
    return ([_window(f, y0, x0, ch, cw, np.asarray(fill, np.uint8)) for f in frames],
            [_window(m.transpose(1, 2, 0), y0, x0, ch, cw, np.zeros(len(m), bool)).transpose(2, 0, 1)
             for m in masks])


def _window(array: np.ndarray, y0: int, x0: int, h: int, w: int, fill: np.ndarray) -> np.ndarray:
    """array[y0:y0+h, x0:x0+w] (H x W x C) where out-of-range pixels take `fill`."""
    out = np.empty((h, w, array.shape[2]), array.dtype)
    out[...] = fill
    ys, xs = slice(max(y0, 0), min(y0 + h, array.shape[0])), slice(max(x0, 0), min(x0 + w, array.shape[1]))
    out[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = array[ys, xs]
    return out


def border_colour(image: np.ndarray) -> tuple[int, int, int]:
    """The median colour of the image's outermost pixels: the background a zoom-out canvas continues."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))  # type: ignore[return-value]


def affine(frames: list[np.ndarray], masks: list[np.ndarray], degrees: float, shear: float,
           fill: tuple[int, int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One random rotation + shear (torchvision's RandomAffine draw) for every frame: images bilinear, masks
    nearest, both by PIL. sam2's RandomAffine warps each mask as a float tensor through grid_sample (measured
    ~30x slower here) and rejects a draw that empties an object; here such an object is dropped afterwards
    (keep_visible)."""
    # lazy: torchvision and sam2's training package only when augmenting (seconds to import)
    import torchvision.transforms as T
    import torchvision.transforms.functional as TF
    from PIL import Image

    h, w = frames[0].shape[:2]
    params = T.RandomAffine.get_params([-degrees, degrees], None, None, [-shear, shear] if shear else None, [w, h])
    out_frames = [np.asarray(TF.affine(Image.fromarray(f), *params, interpolation=TF.InterpolationMode.BILINEAR,
                                       fill=list(fill))) for f in frames]
    out_masks = [np.stack([np.asarray(TF.affine(Image.fromarray(mask), *params, fill=0,
                                                interpolation=TF.InterpolationMode.NEAREST)) for mask in m])
                 if len(m) else m for m in masks]
    return out_frames, out_masks


def _sam2_transforms(frames: list[np.ndarray], masks: list[np.ndarray], pol: Policy) -> tuple[list[np.ndarray],
                                                                                               list[np.ndarray]]:
    """Flip, colour jitter and grayscale by sam2's own transforms, consistent across the frames."""
    # lazy: torchvision and sam2's training package only when augmenting (seconds to import)
    from PIL import Image
    from training.dataset import transforms as T
    from training.utils.data_utils import Frame, Object, VideoDatapoint

    steps = []
    if pol.flip:
        steps.append(T.RandomHorizontalFlip(consistent_transform=True))
    if pol.brightness or pol.contrast or pol.saturation:
        steps.append(T.ColorJitter(consistent_transform=True, brightness=pol.brightness, contrast=pol.contrast,
                                   saturation=pol.saturation, hue=None))
    if pol.grayscale:
        steps.append(T.RandomGrayscale(consistent_transform=True, p=pol.grayscale))
    if not steps:
        return frames, masks
    point = VideoDatapoint(
        frames=[Frame(Image.fromarray(f), [Object(n, t, torch.from_numpy(m)) for n, m in enumerate(frame_masks)])
                for t, (f, frame_masks) in enumerate(zip(frames, masks))],
        video_id=0, size=frames[0].shape[:2])
    for step in steps:
        point = step(point)
    out_frames = [np.asarray(frame.data.convert("RGB")) for frame in point.frames]
    out_masks = [np.stack([obj.segment.numpy() for obj in frame.objects]) if frame.objects
                 else np.zeros((0, *f.shape[:2]), bool) for frame, f in zip(point.frames, out_frames)]
    return out_frames, out_masks


class _seeded:
    """python's `random` and torch's CPU generator seeded inside, restored after (sam2's transforms draw from
    both)."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        torch.manual_seed(self.seed)
        self._state = random.getstate()
        random.seed(self.seed)

    def __exit__(self, *exc) -> None:
        random.setstate(self._state)
        self._fork.__exit__(*exc)
