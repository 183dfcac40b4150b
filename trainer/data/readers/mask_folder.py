"""Plain folders: `images/NAME.ext` plus, per image, either

  masks/NAME/*.png   one binary PNG per instance (nonzero = object). With several classes the file name starts
                     with the class name: `cat_1.png`, `dog-2.png`, `dog.png`.
  masks/NAME.png     one label-index PNG (0 = background). With one class each distinct value is an instance;
                     with several classes value v is class v (1-based, the order of the classes file) and each
                     connected region of it is an instance.

Classes come from an optional `classes.txt` (one per line) or `classes.json` (a list) in the root; default one
class, "object". An empty `masks/NAME/` folder means an image with no objects.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import numpy as np

from trainer.data.readers.base import Entry, Index, Instance, fixed, read_class_names
from trainer.data.readers.images import find_images, read_image, read_mask
from trainer.data.readers.masks import label_map_to_instances
from trainer.data.sample import DataError

NAME = "mask_folder"
DEFAULT_CLASSES = ["object"]
_TRAILING_NUMBER = re.compile(r"[-_ ]*\d+$")


def detect(path: Path) -> bool:
    return (path / "images").is_dir() and (path / "masks").is_dir()


def read(path: Path) -> Index:
    if not detect(path):
        raise DataError(str(path), "expected images/ and masks/ folders")
    class_names = read_class_names(path) or list(DEFAULT_CLASSES)
    entries = []
    for image_path in find_images(path / "images"):
        entry = Entry(str(image_path), partial(read_image, image_path), _no_instances)
        per_instance, label_png = path / "masks" / image_path.stem, path / "masks" / f"{image_path.stem}.png"
        if per_instance.is_dir():
            entry.read_instances = partial(_instance_files, per_instance, class_names)
            entry.problems.extend(_class_problems(per_instance, class_names))
        elif label_png.is_file():
            entry.read_instances = partial(_label_png, label_png, class_names)
        else:
            entry.problems.append(DataError(str(label_png), f"missing mask for image {image_path.name} "
                                                            f"(expected masks/{image_path.stem}.png or "
                                                            f"masks/{image_path.stem}/*.png)"))
        entries.append(entry)
    if not entries:
        raise DataError(str(path / "images"), "no images")
    return Index(class_names, entries, str(path), NAME)


def _mask_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))


def _class_of(mask_file: Path, class_names: list[str]) -> int | None:
    if len(class_names) == 1:
        return 0
    name = _TRAILING_NUMBER.sub("", mask_file.stem)
    return class_names.index(name) if name in class_names else None


def _class_problems(folder: Path, class_names: list[str]) -> list[DataError]:
    return [DataError(str(f), f"unknown category {_TRAILING_NUMBER.sub('', f.stem)!r} in the file name "
                              f"(classes: {', '.join(class_names)})")
            for f in _mask_files(folder) if _class_of(f, class_names) is None]


def _instance_files(folder: Path, class_names: list[str], height: int, width: int) -> list[Instance]:
    out = []
    for mask_file in _mask_files(folder):
        class_id = _class_of(mask_file, class_names)
        if class_id is not None:
            out.append(Instance(str(mask_file), class_id, partial(_binary_mask, mask_file)))
    return out


def _binary_mask(mask_file: Path) -> np.ndarray:
    mask = read_mask(mask_file)
    return mask.any(axis=2) if mask.ndim == 3 else mask


def _label_png(label_png: Path, class_names: list[str], height: int, width: int) -> list[Instance]:
    label = read_mask(label_png)
    if label.ndim == 3:
        if not all(np.array_equal(label[..., 0], label[..., c]) for c in range(1, min(label.shape[2], 3))):
            raise DataError(str(label_png), "label mask must be single-channel (or gray saved as RGB), "
                                            "got colours: save instance ids as an 8/16-bit grayscale PNG")
        label = label[..., 0]
    semantic = len(class_names) > 1
    if semantic:
        unknown = [int(v) for v in np.unique(label) if v > len(class_names)]
        if unknown:
            raise DataError(str(label_png), f"unknown category id {', '.join(map(str, unknown))} (pixel values; "
                                            f"the classes file lists {len(class_names)}, so 1..{len(class_names)})")
    return [Instance(str(label_png), value - 1 if semantic else 0, fixed(region), what=f"label {value}")
            for value, region in label_map_to_instances(label, semantic)]


def _no_instances(height: int, width: int) -> list[Instance]:
    return []
