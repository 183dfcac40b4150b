"""Write small, real datasets in every supported format to a temp folder (for any test that needs files).

Each `write_*(tmp_path, n_images=..., size=...) -> Path` returns the path to hand to `load_dataset`. Image i is
`scene(i, size)`: a noisy gray background with `n_objects` non-overlapping rectangles; object k has class k % 2
("red", "blue") and is painted that colour, so the ground truth of every file is known exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

CLASS_NAMES = ["red", "blue"]
_COLOURS = [(200, 40, 40), (40, 40, 200)]


def scene(index: int, size: int = 64, n_objects: int = 2) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """(HxWx3 uint8 image, masks, class ids) for image `index`; deterministic."""
    rng = np.random.default_rng(index)
    image = (100 + rng.integers(-20, 20, size=(size, size, 3))).astype(np.uint8)
    slot = (size - 8) // n_objects
    masks, class_ids = [], []
    for k in range(n_objects):
        y0 = 4 + (3 * index + 5 * k) % (size // 4)
        x0 = 6 + k * slot
        mask = np.zeros((size, size), bool)
        mask[y0:y0 + size // 2, x0:x0 + slot - 6] = True
        image[mask] = _COLOURS[k % 2]
        masks.append(mask)
        class_ids.append(k % 2)
    return image, masks, class_ids


def box_polygon(mask: np.ndarray) -> list[float]:
    """COCO polygon (continuous coordinates) tracing a rectangular mask's outer edge."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def save_image(path: Path, array: np.ndarray, **save_kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_kw)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file short, as an interrupted download or copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def edit_json(path: Path, change: Callable[[Any], Any]) -> Path:
    """Load, change (in place or by returning a new value), write back."""
    data = json.loads(path.read_text())
    result = change(data)
    path.write_text(json.dumps(data if result is None else result))
    return path


def write_coco(tmp_path: Path, n_images: int = 3, size: int = 64, encoding: str = "mixed",
               crowd: bool = False) -> Path:
    """COCO folder: annotations.json + images/. encoding: "polygon", "rle" (compressed), "rle_list"
    (uncompressed counts) or "mixed" (object k of each image uses polygon, rle, rle_list in turn).
    crowd=True adds an iscrowd annotation covering the top-left corner of image 0."""
    from pycocotools import mask as coco_mask

    root = tmp_path / "coco"
    images, annotations = [], []
    kinds = ["polygon", "rle", "rle_list"]
    for i in range(n_images):
        image, masks, class_ids = scene(i, size)
        save_image(root / "images" / f"img_{i}.png", image)
        images.append({"id": i + 1, "file_name": f"img_{i}.png", "height": size, "width": size})
        for k, (mask, class_id) in enumerate(zip(masks, class_ids)):
            kind = kinds[(i + k) % 3] if encoding == "mixed" else encoding
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": class_id + 1,
                                "iscrowd": 0, "segmentation": _coco_segmentation(mask, kind, coco_mask)})
    if crowd:
        corner = np.zeros((size, size), bool)
        corner[:4, :4] = True
        annotations.append({"id": len(annotations) + 1, "image_id": 1, "category_id": 1, "iscrowd": 1,
                            "segmentation": _coco_segmentation(corner, "rle_list", coco_mask)})
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(CLASS_NAMES)]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                       "categories": categories}))
    return root


def _coco_segmentation(mask: np.ndarray, kind: str, coco_mask: Any) -> Any:
    if kind == "polygon":
        return [box_polygon(mask)]
    if kind == "rle":
        rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {"size": rle["size"], "counts": rle["counts"].decode()}
    if kind == "rle_list":
        flat = mask.flatten(order="F").astype(np.int8)  # COCO runs are column-major, starting with zeros
        edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
        counts = np.diff(np.concatenate([[0], edges])).tolist()
        return {"size": list(mask.shape), "counts": counts}
    raise ValueError(kind)


def write_labpics(tmp_path: Path, n_images: int = 2, size: int = 64) -> Path:
    """LabPicsV1/Simple/Train/{Image/*.jpg, Instance/*.png}: red = vessel ids, blue = material ids.
    Object k of scene(i) is vessel k+1; its lower half holds material k+1."""
    root = tmp_path / "LabPicsV1"
    split = root / "Simple" / "Train"
    for i in range(n_images):
        image, masks, _ = scene(i, size)
        save_image(split / "Image" / f"scene {i}.jpg", image, quality=95)
        ann = np.zeros((size, size, 3), np.uint8)
        for k, mask in enumerate(masks):
            ann[..., 0][mask] = k + 1
            ann[..., 2][labpics_material(mask)] = k + 1
        save_image(split / "Instance" / f"scene {i}.png", ann)
    return root


def labpics_material(vessel: np.ndarray) -> np.ndarray:
    ys = np.nonzero(vessel)[0]
    lower = np.zeros_like(vessel)
    lower[(ys.min() + ys.max()) // 2 + 1:] = True
    return vessel & lower


def write_mask_folder(tmp_path: Path, n_images: int = 3, size: int = 64, style: str = "instances",
                      classes: list[str] | None = None) -> Path:
    """images/img_i.png + masks/img_i/<class>_<k>.png ("instances") or masks/img_i.png ("label": instance k is
    value k+1 with one class, class value c+1 with several). `classes` is written to classes.txt."""
    root = tmp_path / "mask_folder"
    for i in range(n_images):
        image, masks, class_ids = scene(i, size)
        save_image(root / "images" / f"img_{i}.png", image)
        if style == "instances":
            for k, (mask, c) in enumerate(zip(masks, class_ids)):
                name = classes[c] if classes and len(classes) > 1 else "obj"
                save_image(root / "masks" / f"img_{i}" / f"{name}_{k}.png", mask.astype(np.uint8) * 255)
        else:
            label = np.zeros((size, size), np.uint8)
            for k, (mask, c) in enumerate(zip(masks, class_ids)):
                label[mask] = c + 1 if classes and len(classes) > 1 else k + 1
            save_image(root / "masks" / f"img_{i}.png", label)
    if classes:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def write_via(tmp_path: Path, n_images: int = 2, size: int = 64, named: bool = True,
              regions_as_list: bool = False) -> Path:
    """balloon-style folder: via_region_data.json + images. named=True puts {"class": "red"/"blue"} in
    region_attributes, False leaves them empty (one class, like the balloon data)."""
    root = tmp_path / "via"
    data = {}
    for i in range(n_images):
        image, masks, class_ids = scene(i, size)
        path = save_image(root / f"img_{i}.png", image)
        regions = []
        for mask, c in zip(masks, class_ids):
            ys, xs = np.nonzero(mask)
            # Vertices on the corner pixels; the reader adds 0.5 to reach their centres (as Detectron2's balloon
            # tutorial does), so edge pixels may rasterise either way: compare by IoU, not exactly.
            x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
            regions.append({"shape_attributes": {"name": "polygon", "all_points_x": [x0, x1, x1, x0],
                                                 "all_points_y": [y0, y0, y1, y1]},
                            "region_attributes": {"class": CLASS_NAMES[c]} if named else {}})
        data[f"img_{i}.png{path.stat().st_size}"] = {
            "filename": f"img_{i}.png", "size": path.stat().st_size, "file_attributes": {},
            "regions": regions if regions_as_list else {str(k): r for k, r in enumerate(regions)}}
    (root / "via_region_data.json").write_text(json.dumps(data))
    return root


def write_hf(tmp_path: Path, n_images: int = 3, size: int = 64, style: str = "masks") -> Path:
    """`datasets.save_to_disk` folder. style "masks": columns image, masks (list of Images), labels (list of
    ClassLabel red/blue); style "label": columns image, mask (one instance-id Image)."""
    import datasets

    rows: dict[str, list] = {"image": [], "masks": [], "labels": []} if style == "masks" else \
        {"image": [], "mask": []}
    for i in range(n_images):
        image, masks, class_ids = scene(i, size)
        rows["image"].append(Image.fromarray(image))
        if style == "masks":
            rows["masks"].append([Image.fromarray(m.astype(np.uint8) * 255) for m in masks])
            rows["labels"].append(class_ids)
        else:
            label = np.zeros((size, size), np.uint8)
            for k, m in enumerate(masks):
                label[m] = k + 1
            rows["mask"].append(Image.fromarray(label))
    features = {"image": datasets.Image()}
    if style == "masks":
        features.update(masks=datasets.List(datasets.Image()), labels=datasets.List(datasets.ClassLabel(
            names=CLASS_NAMES)))
    else:
        features["mask"] = datasets.Image()
    root = tmp_path / "hf"
    datasets.Dataset.from_dict(rows, features=datasets.Features(features)).save_to_disk(str(root))
    return root

