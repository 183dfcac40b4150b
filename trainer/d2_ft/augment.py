"""The --augment levels of trainer/augment.py as detectron2 augmentations, for its own DatasetMapper.

detectron2 crops, flips and resizes the image and its (RLE) masks together, drops the instances a crop empties
and, with recompute_boxes, takes the boxes from the cropped masks; randomness comes from its seeded workers.
"""

from __future__ import annotations

import numpy as np

from trainer.augment import policy

CROP = (0.6, 0.6)  # relative window of detectron2's RandomCrop...
CROP_P = 0.5  # ...applied to half of the images


def d2_augmentations(cfg, level: str) -> list:
    """ResizeShortestEdge over the zoom range x the cfg's sizes, then crop, flip, brightness/contrast/saturation."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.data import transforms as T

    pol = policy(level)
    base = list(cfg.INPUT.MIN_SIZE_TRAIN)
    zooms = np.exp(np.linspace(np.log(pol.scale[0]), np.log(pol.scale[1]), 5)) if pol.scale != (1, 1) else [1.0]
    sizes = sorted({int(round(s * z)) for s in base for z in zooms})
    augs = [T.ResizeShortestEdge(sizes, cfg.INPUT.MAX_SIZE_TRAIN, sample_style="choice")]
    if pol.scale != (1.0, 1.0):
        augs.append(T.RandomApply(T.RandomCrop("relative_range", CROP), prob=CROP_P))
    if pol.flip:
        augs.append(T.RandomFlip(horizontal=True))
    if pol.brightness:
        augs.append(T.RandomBrightness(1 - pol.brightness, 1 + pol.brightness))
    if pol.contrast:
        augs.append(T.RandomContrast(1 - pol.contrast, 1 + pol.contrast))
    if pol.saturation:
        augs.append(T.RandomSaturation(1 - pol.saturation, 1 + pol.saturation))
    return augs
