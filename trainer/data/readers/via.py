"""VGG Image Annotator JSON, as in the Detectron2 balloon tutorial (`balloon/train/via_region_data.json`).

The file maps keys to {"filename", "regions"}; regions are a dict (VIA 1) or a list (VIA 2), each with
`shape_attributes` (polygon all_points_x/all_points_y; rect, circle and ellipse are accepted too) and
`region_attributes`. A VIA 2 project file (`_via_img_metadata`) works as well. Images sit next to the JSON or in
`images/`.

Class of a region: its `class`/`label`/`name`/`category`/`type` attribute, or its only string attribute; regions
without one are class "object" (the balloon data has no attributes: one class). An optional `classes.txt` /
`classes.json` next to the JSON fixes the class list and order; a region naming another class is then an error.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from trainer.data.readers.base import Entry, Index, Instance, read_class_names, read_json
from trainer.data.readers.images import read_image
from trainer.data.readers.masks import polygons_to_mask
from trainer.data.sample import DataError

NAME = "via"
DEFAULT_CLASS = "object"
_CLASS_KEYS = ("class", "label", "name", "category", "type")
_SNIFF_BYTES = 65536


def looks_like_via(json_path: Path) -> bool:
    """Cheap content sniff (no full parse: COCO files can be hundreds of MB)."""
    try:
        with open(json_path, encoding="utf-8", errors="replace") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return False
    return "_via_img_metadata" in head or ('"regions"' in head and '"filename"' in head)


def find_json(path: Path) -> Path | None:
    if path.is_file():
        return path
    if (path / "via_region_data.json").is_file():
        return path / "via_region_data.json"
    candidates = [p for p in sorted(path.glob("*.json")) if looks_like_via(p)] if path.is_dir() else []
    return candidates[0] if len(candidates) == 1 else None


def detect(path: Path) -> bool:
    return path.is_dir() and find_json(path) is not None


def read(path: Path) -> Index:
    json_path = find_json(path)
    if json_path is None:
        raise DataError(str(path), "no VIA annotation file (via_region_data.json)")
    data = read_json(json_path)
    if isinstance(data, dict) and isinstance(data.get("_via_img_metadata"), dict):
        data = data["_via_img_metadata"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(str(json_path), "not a VIA annotation file: expected an object of image records")
    if not data:
        raise DataError(str(json_path), "lists no images")

    records, problems = [], []
    for key, record in data.items():
        if not isinstance(record.get("filename"), str):
            problems.append(DataError(str(json_path), f"record {key!r}: no 'filename'"))
            continue
        regions = record.get("regions") or []
        records.append((record["filename"], list(regions.values()) if isinstance(regions, dict) else regions))

    fixed_names = read_class_names(json_path.parent)
    found = sorted({_class_name(r) for _, regions in records for r in regions if isinstance(r, dict)})
    class_names = fixed_names or found or [DEFAULT_CLASS]

    entries, seen = [], {}
    for filename, regions in records:
        image_path = next((p for p in (json_path.parent / filename, json_path.parent / "images" / filename)
                           if p.is_file()), json_path.parent / filename)
        entry = Entry(str(image_path), partial(read_image, image_path),
                      partial(_instances, regions, class_names, str(json_path), filename))
        entry.problems.extend(_region_problems(regions, class_names, json_path, filename))
        if filename in seen:
            duplicate = DataError(str(json_path), f"duplicate records for image {filename!r}")
            entry.problems.append(duplicate)
            seen[filename].problems.append(duplicate)
        seen[filename] = entry
        entries.append(entry)
    return Index(class_names, entries, str(json_path.parent), NAME, problems)


def _class_name(region: dict) -> str:
    attributes = region.get("region_attributes") or {}
    if not isinstance(attributes, dict):
        return DEFAULT_CLASS
    for key in _CLASS_KEYS:
        if isinstance(attributes.get(key), str) and attributes[key].strip():
            return attributes[key].strip()
    strings = [v.strip() for v in attributes.values() if isinstance(v, str) and v.strip()]
    return strings[0] if len(strings) == 1 else DEFAULT_CLASS


def _region_problems(regions: Any, class_names: list[str], json_path: Path, filename: str) -> list[DataError]:
    if not isinstance(regions, list):
        return [DataError(str(json_path), f"image {filename!r}: 'regions' must be a list or an object")]
    problems = []
    for k, region in enumerate(regions):
        what = f"image {filename!r} region {k}"
        if not isinstance(region, dict) or not isinstance(region.get("shape_attributes"), dict):
            problems.append(DataError(str(json_path), f"{what}: no shape_attributes"))
        elif _class_name(region) not in class_names:
            problems.append(DataError(str(json_path), f"{what}: unknown category {_class_name(region)!r} "
                                                      f"(classes: {', '.join(class_names)})"))
    return problems


def _instances(regions: Any, class_names: list[str], json_path: str, filename: str,
               height: int, width: int) -> list[Instance]:
    if not isinstance(regions, list):
        return []
    return [Instance(json_path, class_names.index(_class_name(region)),
                     partial(_rasterize, region["shape_attributes"], height, width),
                     what=f"image {filename!r} region {k}")
            for k, region in enumerate(regions)
            if isinstance(region, dict) and isinstance(region.get("shape_attributes"), dict)
            and _class_name(region) in class_names]


def _rasterize(shape: dict, height: int, width: int) -> np.ndarray:
    kind = shape.get("name")
    if kind == "polygon":
        xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
        if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
            raise ValueError("all_points_x and all_points_y must be lists of the same length")
        # +0.5: VIA points are pixel corners, COCO polygon rasterisation samples pixel centres (as in the D2 tutorial)
        return polygons_to_mask([[v for x, y in zip(xs, ys) for v in (_num(x) + 0.5, _num(y) + 0.5)]],
                                height, width)
    if kind == "rect":
        x, y, w, h = (_num(shape.get(k)) for k in ("x", "y", "width", "height"))
        return polygons_to_mask([[x, y, x + w, y, x + w, y + h, x, y + h]], height, width)
    if kind in ("circle", "ellipse"):
        # lazy: scikit-image only for VIA ellipses
        from skimage.draw import ellipse

        cx, cy = _num(shape.get("cx")), _num(shape.get("cy"))
        rx, ry = (_num(shape.get("r")),) * 2 if kind == "circle" else (_num(shape.get("rx")), _num(shape.get("ry")))
        mask = np.zeros((height, width), bool)
        rr, cc = ellipse(cy, cx, ry, rx, shape=(height, width), rotation=-float(shape.get("theta", 0) or 0))
        mask[rr, cc] = True
        return mask
    raise ValueError(f"unsupported region shape {kind!r} (polygon, rect, circle or ellipse)")


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"coordinate {value!r} is not a number")
    return float(value)
