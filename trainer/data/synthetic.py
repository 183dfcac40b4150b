"""Deterministic LabPics-like synthetic scenes for fast tests: glass vessels partly filled with a liquid.

Each vessel is an instance of class 'vessel'; the liquid inside it is an instance of class 'liquid'.
Same seed, same pixels, on any machine.
"""

from __future__ import annotations

import numpy as np

from trainer.data.sample import Sample, SegmentationDataset

CLASS_NAMES = ["vessel", "liquid"]


def make_scene(seed: int, size: int = 128, max_vessels: int = 3) -> Sample:
    rng = np.random.default_rng(seed)
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w]
    # Bench-top background: a soft gradient plus noise so no pixel value identifies a class on its own.
    base = rng.uniform(60, 140, size=3)
    image = base + 40 * (yy / h)[..., None] + rng.normal(0, 8, size=(h, w, 3))
    masks, class_ids = [], []
    n_vessels = int(rng.integers(1, max_vessels + 1))
    slot = w // n_vessels
    for i in range(n_vessels):
        vw = int(rng.integers(slot // 3, max(slot * 3 // 4, slot // 3 + 2)))
        vh = int(rng.integers(h // 3, h * 3 // 4))
        cx = i * slot + slot // 2
        x0, x1 = max(cx - vw // 2, 1), min(cx + vw // 2, w - 1)
        y1 = int(rng.integers(h * 3 // 4, h - 2))
        y0 = max(y1 - vh, 1)
        # Round-bottomed vessel: a box whose lower corners are cut by an ellipse.
        ry = max((x1 - x0) // 2, 1)
        body = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1 - ry)
        bottom = (((xx - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((yy - (y1 - ry)) / ry) ** 2 <= 1) & (yy >= y1 - ry)
        vessel = body | bottom
        glass = rng.uniform(170, 230, size=3)
        image[vessel] = 0.35 * image[vessel] + 0.65 * glass
        masks.append(vessel)
        class_ids.append(0)
        fill = float(rng.uniform(0.3, 0.8))
        level = int(y1 - fill * (y1 - y0))
        liquid = vessel & (yy >= level) & (xx > x0 + 1) & (xx < x1 - 2)
        if liquid.sum() > 8:
            image[liquid] = rng.uniform(20, 220, size=3) + rng.normal(0, 6, size=(int(liquid.sum()), 3))
            masks.append(liquid)
            class_ids.append(1)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return Sample(image=image, masks=np.stack(masks), class_ids=np.array(class_ids), source=f"synthetic://{seed}")


def make_dataset(n_images: int = 8, size: int = 128, seed: int = 0) -> SegmentationDataset:
    samples = [make_scene(seed * 100_003 + i, size=size) for i in range(n_images)]
    return SegmentationDataset.from_samples(samples, CLASS_NAMES, root="synthetic", format="synthetic")
