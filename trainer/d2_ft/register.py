"""Our SegmentationDataset as detectron2 datasets (DatasetCatalog + MetadataCatalog).

Images are written once to a cache folder (PNG, the data layer's normalised uint8 RGB) rather than kept in
memory behind a custom mapper: detectron2's stock DatasetMapper, data loaders (worker processes included),
COCOEvaluator and the plain DefaultTrainer baseline of the benchmark then run unchanged, workers read files
instead of unpickling big arrays, and the model sees exactly the pixels inference will see. The cache lives in
RUN_DIR/state/ (never pushed) and is reused on --resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm import tqdm

from trainer.data.sample import Sample, SegmentationDataset


def instance_annotation(mask: np.ndarray, class_id: int) -> dict[str, Any] | None:
    """One detectron2 annotation: RLE segmentation + XYWH_ABS box; None for an empty mask."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.structures import BoxMode

    if not mask.any():
        return None
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")  # str, so the dicts (and COCO json export) are JSON-safe
    return {"segmentation": rle, "bbox": [float(v) for v in mask_utils.toBbox(rle)], "bbox_mode": BoxMode.XYWH_ABS,
            "category_id": int(class_id), "iscrowd": 0}


def record(sample: Sample, image_id: int, file_name: str) -> dict[str, Any]:
    annotations = [instance_annotation(m, c) for m, c in zip(sample.masks, sample.class_ids)]
    return {"file_name": file_name, "image_id": image_id, "height": sample.height, "width": sample.width,
            "source": sample.source, "annotations": [a for a in annotations if a is not None]}


def dataset_dicts(dataset: SegmentationDataset, image_dir: str | Path, write_images: bool = True,
                  desc: str = "caching images") -> list[dict[str, Any]]:
    """detectron2 dataset dicts for `dataset`, its images cached as PNG in image_dir (written if missing)."""
    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    dicts = []
    for i, sample in enumerate(tqdm(dataset, total=len(dataset), desc=desc, leave=False, disable=len(dataset) < 50)):
        path = image_dir / f"{i:06d}.png"
        if write_images and not path.exists():
            tmp = path.with_suffix(".tmp.png")
            Image.fromarray(sample.image).save(tmp)
            tmp.replace(path)  # atomic: a killed run never leaves a truncated image behind
        dicts.append(record(sample, i, str(path)))
    return dicts


def register(name: str, dicts: list[dict[str, Any]], class_names: list[str]) -> str:
    """(Re-)register `name`; re-registering lets one process train several runs (tests, notebooks)."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: dicts)
    MetadataCatalog.get(name).set(thing_classes=list(class_names), evaluator_type="coco")
    return name
