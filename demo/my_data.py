"""A visitor's small dataset in their session folder: images, masks with class names, as files plus one JSON index.

Layout: `<session>/data/index.json`, `images/<id>.png` (the image as the app showed it: 8-bit RGB, downscaled),
`masks/<id>_<n>.png` (0/255). `to_dataset` gives the trainer's SegmentationDataset; the COCO export is the data
layer's own writer (trainer/data/export.py).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from demo import settings
from demo.images import image_key
from demo.sessions import check_space
from trainer.data.sample import Sample, SegmentationDataset

_lock = threading.Lock()  # one visitor may fire two edits at once (double click): the index is read-modify-write
_CLASS = re.compile(r"[\w][\w .-]{0,39}")


def max_images() -> int:
    return settings.get().my_images


def max_masks() -> int:
    return settings.get().my_masks


def check_room(session: Path, count: int) -> None:
    """Refuse `count` more images at once when they cannot all fit (checked before any is decoded)."""
    have = len(read_index(session)["images"])
    if have + count > max_images():
        raise ValueError(f"{count} image(s) would take your dataset over its maximum of {max_images()} images "
                         f"(it holds {have}); remove some first")


def data_dir(session: Path) -> Path:
    return session / "data"


def read_index(session: Path) -> dict[str, Any]:
    path = data_dir(session) / "index.json"
    return json.loads(path.read_text()) if path.is_file() else {"images": [], "next": 0}


def _write_index(session: Path, index: dict[str, Any]) -> None:
    path = data_dir(session) / "index.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=1))
    tmp.replace(path)


def _find(index: dict[str, Any], image_id: str) -> dict[str, Any]:
    for entry in index["images"]:
        if entry["id"] == image_id:
            return entry
    raise ValueError(f"{image_id!r}: no such image in your dataset (pick one of "
                     f"{', '.join(e['id'] for e in index['images']) or 'none yet'})")


def add_image(session: Path, image: np.ndarray) -> str:
    """Add an HxWx3 uint8 image (once: the same pixels give the same id); returns its id."""
    key = image_key(image)
    with _lock:
        index = read_index(session)
        for entry in index["images"]:
            if entry["key"] == key:
                return entry["id"]
        if len(index["images"]) >= max_images():
            raise ValueError(f"your dataset holds its maximum of {max_images()} images; remove one first")
        check_space(session, image.nbytes)
        image_id = f"img{index['next']}"
        (data_dir(session) / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(data_dir(session) / "images" / f"{image_id}.png")
        index["images"].append({"id": image_id, "key": key, "masks": []})
        index["next"] += 1
        _write_index(session, index)
    return image_id


def add_mask(session: Path, image_id: str, mask: np.ndarray, class_name: str) -> int:
    """Add a mask (HxW bool, the image's size) of class `class_name` to an image; returns the dataset's mask count."""
    class_name = (class_name or "").strip()
    if not _CLASS.fullmatch(class_name):
        raise ValueError(f"class name {class_name!r}: 1-40 letters, digits, spaces, '.', '-' or '_'")
    mask = np.asarray(mask).astype(bool)
    with _lock:
        index = read_index(session)
        entry = _find(index, image_id)
        if sum(len(e["masks"]) for e in index["images"]) >= max_masks():
            raise ValueError(f"your dataset holds its maximum of {max_masks()} masks; remove one first")
        height, width = load_rgb(session, image_id).shape[:2]
        if mask.shape != (height, width):
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, image {image_id} is {width}x{height}")
        if not mask.any():
            raise ValueError("the mask is empty: click on the object (or draw a box) until it is covered")
        check_space(session, mask.size // 8)
        name = f"{image_id}_{entry.get('next_mask', 0)}.png"
        (data_dir(session) / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(data_dir(session) / "masks" / name)  # 1-bit PNG
        entry["masks"].append({"file": name, "class": class_name})
        entry["next_mask"] = entry.get("next_mask", 0) + 1
        _write_index(session, index)
        return sum(len(e["masks"]) for e in index["images"])


def remove(session: Path, image_id: str, mask_index: int | None = None) -> None:
    """Remove one mask (its 0-based index on the image) or, with mask_index None, the image and its masks."""
    with _lock:
        index = read_index(session)
        entry = _find(index, image_id)
        if mask_index is None:
            index["images"].remove(entry)
            gone = [m["file"] for m in entry["masks"]]
            (data_dir(session) / "images" / f"{image_id}.png").unlink(missing_ok=True)
        else:
            if not 0 <= mask_index < len(entry["masks"]):
                raise ValueError(f"image {image_id} has {len(entry['masks'])} mask(s); no mask #{mask_index}")
            gone = [entry["masks"].pop(mask_index)["file"]]
        for name in gone:
            (data_dir(session) / "masks" / name).unlink(missing_ok=True)
        _write_index(session, index)


def load_rgb(session: Path, image_id: str) -> np.ndarray:
    return np.asarray(Image.open(data_dir(session) / "images" / f"{image_id}.png").convert("RGB"))


def load_masks(session: Path, entry: dict[str, Any]) -> np.ndarray:
    """The image's masks as N x H x W bool."""
    masks = [np.asarray(Image.open(data_dir(session) / "masks" / m["file"])).astype(bool) for m in entry["masks"]]
    if masks:
        return np.stack(masks)
    height, width = load_rgb(session, entry["id"]).shape[:2]
    return np.zeros((0, height, width), bool)


def class_names(index: dict[str, Any]) -> list[str]:
    return sorted({m["class"] for e in index["images"] for m in e["masks"]})


def summary(index: dict[str, Any]) -> str:
    """"3 images, 7 masks (coin 5, bowl 2)" — what the tab shows above the gallery."""
    counts: dict[str, int] = {}
    for entry in index["images"]:
        for m in entry["masks"]:
            counts[m["class"]] = counts.get(m["class"], 0) + 1
    classes = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    masks = sum(counts.values())
    return f"{len(index['images'])} images, {masks} masks" + (f" ({classes})" if classes else "")


def to_dataset(session: Path, with_masks_only: bool = True):
    """The trainer's SegmentationDataset of the visitor's images (by default only those with masks)."""
    index = read_index(session)
    names = class_names(index)
    samples = [Sample(load_rgb(session, e["id"]), load_masks(session, e),
                      np.array([names.index(m["class"]) for m in e["masks"]], np.int64), f"{e['id']}.png")
               for e in index["images"] if e["masks"] or not with_masks_only]
    return SegmentationDataset.from_samples(samples, names)
