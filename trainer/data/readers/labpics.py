"""LabPics V1 "Simple" layout: `Simple/Train/Image/NAME.jpg` + `Simple/Train/Instance/NAME.png`.

The root may be the LabPics folder, `Simple/`, or a split folder such as `Simple/Train` (point at `Simple/Test`
to read the test split; a root above the split reads `Train`).

Instance PNG encoding, read as the LabPics SAM2 fine-tuning tutorial reads it (`cv2.imread` gives BGR, so its
`ann_map[:,:,0]` is our blue channel and `ann_map[:,:,2]` our red one): red = vessel instance ids, blue = material
(contents) instance ids, 0 = none. Like the tutorial's merged map, material wins where both are set, so a vessel
mask is the vessel minus its contents and no pixel belongs to two instances (a point prompt has one target).
Classes: ["vessel", "material"] - kept apart, rather than the tutorial's single class, so Detectron2 can
learn them too.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from trainer.data.readers.base import Entry, Index, Instance, fixed
from trainer.data.readers.images import find_images, read_image, read_mask
from trainer.data.sample import DataError

NAME = "labpics"
CLASS_NAMES = ["vessel", "material"]
VESSEL, MATERIAL = 0, 1


def split_folder(path: Path) -> Path | None:
    for folder in (path / "Simple" / "Train", path / "Train", path):
        if (folder / "Image").is_dir() and (folder / "Instance").is_dir():
            return folder
    return None


def detect(path: Path) -> bool:
    return path.is_dir() and split_folder(path) is not None


def read(path: Path) -> Index:
    folder = split_folder(path)
    if folder is None:
        raise DataError(str(path), "no LabPics layout (Simple/Train/Image and Simple/Train/Instance)")
    entries = []
    for image_path in find_images(folder / "Image"):
        mask_path = folder / "Instance" / f"{image_path.stem}.png"
        entries.append(Entry(str(image_path), partial(read_image, image_path),
                             partial(_instances, mask_path, image_path.name)))
    if not entries:
        raise DataError(str(folder / "Image"), "no images")
    return Index(list(CLASS_NAMES), entries, str(folder), NAME)


def _instances(mask_path: Path, image_name: str, height: int, width: int) -> list[Instance]:
    if not mask_path.is_file():
        raise DataError(str(mask_path), f"missing instance mask for image {image_name}")
    ann = read_mask(mask_path)
    if ann.ndim != 3 or ann.shape[2] < 3:
        raise DataError(str(mask_path), f"instance mask must be RGB (red = vessel ids, blue = material ids), "
                                        f"got shape {ann.shape}")
    vessels, materials = ann[..., 0], ann[..., 2]
    out = []
    for vid in np.unique(vessels[materials == 0]):
        if vid:
            out.append(Instance(str(mask_path), VESSEL, fixed((vessels == vid) & (materials == 0)),
                                what=f"vessel {vid}"))
    for mid in np.unique(materials):
        if mid:
            out.append(Instance(str(mask_path), MATERIAL, fixed(materials == mid), what=f"material {mid}"))
    return out
