"""Write any SegmentationDataset as a COCO instances folder: `annotations.json` + `images/*.png`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from trainer.data.readers.masks import encode_rle
from trainer.data.sample import Sample, SegmentationDataset


def write_coco(dataset: SegmentationDataset | Iterable[Sample], out_dir: str | Path, encoding: str = "rle",
               info: dict | None = None, class_names: list[str] | None = None) -> Path:
    """Export to `out_dir` (created) and return it; `load_dataset(out_dir)` reads it back.

    encoding: "rle" (exact, compressed COCO RLE) or "polygon" (contours traced with scikit-image: smaller and
    editable in annotation tools, but approximate, and holes get filled). Images are written as PNG (lossless)
    after normalisation, so the export reads back as plain uint8 RGB. Category ids are 1..K (COCO keeps 0 for
    background).
    """
    if encoding not in ("rle", "polygon"):
        raise ValueError(f"encoding must be 'rle' or 'polygon', got {encoding!r}")
    names = list(class_names if class_names is not None else dataset.class_names)  # type: ignore[union-attr]
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations, used = [], [], set()
    for image_id, sample in enumerate(dataset, start=1):
        file_name = _unique_name(sample.source, image_id, used)
        Image.fromarray(sample.image).save(out / "images" / file_name)
        images.append({"id": image_id, "file_name": file_name, "height": sample.height, "width": sample.width,
                       **({"split": sample.split} if sample.split else {})})
        for mask, class_id in zip(sample.masks, sample.class_ids):
            segmentation = encode_rle(mask) if encoding == "rle" else mask_to_polygons(mask)
            ys, xs = np.nonzero(mask)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(class_id) + 1,
                "segmentation": segmentation, "area": int(mask.sum()), "iscrowd": 0,
                "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
            })
    coco = {"info": info or {"description": f"exported by segkit from {getattr(dataset, 'root', '')}"},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": [{"id": k + 1, "name": n, "supercategory": ""} for k, n in enumerate(names)]}
    (out / "annotations.json").write_text(_dumps(coco), encoding="utf-8")
    return out


def _dumps(coco: dict) -> str:
    """JSON with one image / annotation / category per line: diff-able and readable, still compact."""
    def value(v: object) -> str:
        if isinstance(v, list) and v:
            return "[\n" + ",\n".join(f"  {json.dumps(item)}" for item in v) + "\n ]"
        return json.dumps(v)
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {value(v)}" for k, v in coco.items()) + "\n}\n"


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.5) -> list[list[float]]:
    """Contours as COCO polygons. COCO coordinates are continuous (pixel i spans [i, i+1)), scikit-image's are
    pixel centres, hence the +0.5."""
    # lazy: scikit-image only for the polygon export
    from skimage.measure import approximate_polygon, find_contours

    padded = np.pad(mask.astype(np.uint8), 1)  # close contours that touch the border
    polygons = []
    for contour in find_contours(padded, 0.5):
        contour = approximate_polygon(contour - 1, tolerance)
        if len(contour) >= 4:  # closed: first == last, so >= 3 distinct points
            polygons.append([round(float(v) + 0.5, 2) for y, x in contour[:-1] for v in (x, y)])
    return polygons


def _unique_name(source: str, index: int, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(source).split("://")[-1]).stem).strip("._") or "image"
    name = f"{stem}.png"
    if name in used:
        name = f"{stem}_{index}.png"
    used.add(name)
    return name
