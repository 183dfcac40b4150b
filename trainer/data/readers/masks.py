"""Turn annotation geometry into HxW masks: COCO/VIA polygons, COCO RLE, label-index maps.

Every function checks its input first and raises a ValueError with a short reason; the reader adds the file name.
(pycocotools itself can crash or read past its buffer on malformed RLE, so we never hand it unchecked data.)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from pycocotools import mask as coco_mask

from trainer.data.instances import Crop, InstanceMasks


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO-style polygons [[x0, y0, x1, y1, ...], ...] (union of all parts) to an HxW bool mask."""
    if not isinstance(polygons, (list, tuple)) or not polygons:
        raise ValueError("empty polygon list")
    clean = []
    for k, poly in enumerate(polygons):
        if not isinstance(poly, (list, tuple)) or not all(_is_number(v) for v in poly):
            raise ValueError(f"polygon {k} is not a list of numbers")
        if len(poly) % 2 or len(poly) < 6:
            raise ValueError(f"polygon {k} has {len(poly)} coordinates (needs an even number, at least 3 points)")
        clean.append([float(v) for v in poly])
    rles = coco_mask.frPyObjects(clean, height, width)
    return coco_mask.decode(coco_mask.merge(rles)).astype(bool)


def rle_to_mask(rle: Any) -> np.ndarray:
    """Decode a COCO RLE dict (compressed string counts or uncompressed list counts) at its own `size`."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("RLE must be a dict with 'size' and 'counts'")
    size = rle["size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError(f"RLE size must be [height, width], got {size!r}")
    h, w = size
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and c >= 0 for c in counts):
            raise ValueError("uncompressed RLE counts must be non-negative integers")
        decoded_counts = counts
        rle = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, (str, bytes)):
        text = counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts
        decoded_counts = _compressed_counts(text)
        rle = {"size": [h, w], "counts": text.encode("ascii")}
    else:
        raise ValueError(f"RLE counts must be a string or a list, got {type(counts).__name__}")
    if sum(decoded_counts) != h * w:
        raise ValueError(f"RLE counts cover {sum(decoded_counts)} pixels, size {w}x{h} has {h * w}")
    return coco_mask.decode(rle).astype(bool)


def encode_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE with a JSON-ready string `counts`."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def label_map_to_instances(label: np.ndarray, semantic: bool) -> list[tuple[int, Crop]]:
    """Split a label-index image (0 = background) into (value, mask) pairs, each mask as its box crop (a map of
    thousands of instances never becomes thousands of full-size masks).

    semantic=False: each distinct value is one instance (instance-id maps, e.g. cell segmentation labels).
    semantic=True:  each value is a class; its connected components are the instances (objects of one class
                    that touch merge into one: use one mask per instance when that matters).
    """
    if not semantic:
        values, masks = InstanceMasks.from_label_map(label)
        return list(zip(values, masks.crops))
    # lazy: scikit-image only for label maps
    from skimage.measure import label as connected_components

    out: list[tuple[int, Crop]] = []
    for value in np.unique(label):
        if value == 0:
            continue
        components = connected_components(label == value, connectivity=2)
        out.extend((int(value), crop) for crop in InstanceMasks.from_label_map(components)[1].crops)
    return out


def _compressed_counts(text: str) -> list[int]:
    """Decode COCO's compressed RLE string (LEB128-like, 5 bits per char, deltas from counts[i-2])."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise ValueError("compressed RLE string ends in the middle of a number")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"compressed RLE string has an invalid character {text[pos]!r}")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        if value < 0:
            raise ValueError("compressed RLE string decodes to a negative run length")
        counts.append(value)
    return counts


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
