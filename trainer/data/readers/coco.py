"""COCO instance segmentation JSON (polygons, compressed RLE, uncompressed RLE) via pycocotools.

Layout: a JSON file, or a folder holding `annotations.json` / one `instances*.json` (also under `annotations/`),
with the images next to the JSON or in an `images/` folder beside it.

Category ids may be any integers; class ids are their rank (sorted category ids -> 0..K-1).
`iscrowd: 1` annotations are ignored: they mark a group of objects as one region, which is not an instance a
prompt could select; images whose only annotations are crowds are kept with no instances, like images with none.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

from trainer.data.readers.base import Entry, Index, Instance, read_json
from trainer.data.readers.images import read_image
from trainer.data.readers.masks import polygons_to_mask, rle_to_mask
from trainer.data.sample import DataError

NAME = "coco"


def find_json(path: Path) -> Path | None:
    """The annotation file for `path` (a JSON file or a folder), None if there is none."""
    if path.is_file():
        return path
    for folder in (path, path / "annotations"):
        if (folder / "annotations.json").is_file():
            return folder / "annotations.json"
        found = sorted(folder.glob("instances*.json")) if folder.is_dir() else []
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise DataError(str(folder), f"several COCO files ({names}): pass the one to use")
        if found:
            return found[0]
    return None


def detect(path: Path) -> bool:
    try:
        return path.is_dir() and find_json(path) is not None
    except DataError:
        return True  # it is COCO, just ambiguous: let read() say so


def read(path: Path) -> Index:
    json_path = find_json(path)
    if json_path is None:
        raise DataError(str(path), "no COCO annotation file (annotations.json or instances*.json)")
    data = read_json(json_path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(str(json_path), "not a COCO instances file: no 'images' list")
    if not data["images"]:
        raise DataError(str(json_path), "lists no images")
    class_names, category_index = _categories(data.get("categories"), json_path)
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise DataError(str(json_path), "'annotations' must be a list")

    entries, by_id, index_problems = _entries(data["images"], json_path)
    per_image: dict[Any, list[dict]] = defaultdict(list)
    for k, ann in enumerate(annotations):
        if not isinstance(ann, dict) or "image_id" not in ann:
            index_problems.append(DataError(str(json_path), f"annotations[{k}]: not an annotation with an image_id"))
        elif not _is_key(ann["image_id"]) or ann["image_id"] not in by_id:
            index_problems.append(DataError(str(json_path), f"annotation {ann.get('id')}: unknown image id "
                                                            f"{ann['image_id']!r}"))
        else:
            per_image[ann["image_id"]].append(ann)
    _flag_duplicate_annotations(per_image, by_id, json_path)

    for image_id, image_entries in by_id.items():
        for entry, record in image_entries:
            anns = [a for a in per_image.get(image_id, []) if not a.get("iscrowd")]
            entry.problems.extend(_annotation_problems(anns, record, category_index, json_path))
            entry.read_instances = partial(_instances, anns, category_index, str(json_path), record["file_name"])
    return Index(class_names, entries, str(json_path.parent), NAME, index_problems)


def _categories(categories: Any, json_path: Path) -> tuple[list[str], dict[Any, int]]:
    if not isinstance(categories, list) or not categories:
        raise DataError(str(json_path), "no 'categories' list: class names are unknown")
    seen: dict[Any, str] = {}
    for k, cat in enumerate(categories):
        if not isinstance(cat, dict) or not _is_key(cat.get("id")) or "name" not in cat:
            raise DataError(str(json_path), f"categories[{k}] needs an 'id' and a 'name'")
        if cat["id"] in seen:
            raise DataError(str(json_path), f"duplicate category id {cat['id']} ({seen[cat['id']]!r} and "
                                            f"{cat['name']!r})")
        seen[cat["id"]] = str(cat["name"])
    ordered = sorted(seen, key=lambda cid: (str(type(cid)), cid))
    return [seen[cid] for cid in ordered], {cid: k for k, cid in enumerate(ordered)}


def _entries(images: list, json_path: Path) -> tuple[list[Entry], dict[Any, list[tuple[Entry, dict]]], list]:
    entries: list[Entry] = []
    by_id: dict[Any, list[tuple[Entry, dict]]] = defaultdict(list)
    problems: list[DataError] = []
    for k, record in enumerate(images):
        if not (isinstance(record, dict) and _is_key(record.get("id")) and isinstance(record.get("file_name"), str)):
            problems.append(DataError(str(json_path), f"images[{k}]: needs an 'id' and a 'file_name'"))
            continue
        image_path = _locate_image(json_path, record["file_name"])
        size = (record.get("height"), record.get("width"))
        entry = Entry(str(image_path), partial(_read_listed_image, image_path, json_path, record["id"]),
                      _no_instances, expected_size=size if all(isinstance(v, int) for v in size) else None,
                      size_source=str(json_path), split=_split(record))
        entries.append(entry)
        by_id[record["id"]].append((entry, record))
    for image_id, owners in by_id.items():
        if len(owners) > 1:
            names = ", ".join(rec["file_name"] for _, rec in owners)
            for entry, _ in owners:  # both are suspect: which one do its annotations belong to?
                entry.problems.append(DataError(str(json_path), f"duplicate image id {image_id!r} ({names})"))
    return entries, by_id, problems


def _split(record: dict) -> str:
    """An image's own split, as some COCO exports (and our built-in data) record it: "train", "val", "test"..."""
    value = record.get("split")
    return value.strip().lower() if isinstance(value, str) else ""


def _flag_duplicate_annotations(per_image: dict, by_id: dict, json_path: Path) -> None:
    owners: dict[Any, list] = defaultdict(list)
    for image_id, anns in per_image.items():
        for ann in anns:
            if _is_key(ann.get("id")):
                owners[ann["id"]].append(image_id)
    for ann_id, image_ids in owners.items():
        if len(image_ids) > 1:
            images = list(dict.fromkeys(image_ids))
            problem = DataError(str(json_path), f"duplicate annotation id {ann_id!r} (used {len(image_ids)} times; "
                                                f"image id{'s' * (len(images) > 1)} {', '.join(map(repr, images))})")
            for image_id in images:
                for entry, _ in by_id[image_id]:
                    entry.problems.append(problem)


def _annotation_problems(anns: list[dict], record: dict, category_index: dict, json_path: Path) -> list[DataError]:
    problems = []
    for ann in anns:
        what = f"annotation {ann.get('id')!r} (image {record['file_name']!r})"
        if not _known(ann.get("category_id"), category_index):
            problems.append(DataError(str(json_path), f"{what}: unknown category id {ann.get('category_id')!r}"))
        elif not ann.get("segmentation"):
            problems.append(DataError(str(json_path), f"{what}: no segmentation (box-only annotations cannot "
                                                      f"train masks)"))
    return problems


def _instances(anns: list[dict], category_index: dict, json_path: str, file_name: str,
               height: int, width: int) -> list[Instance]:
    return [Instance(json_path, category_index[ann["category_id"]],
                     partial(_decode, ann["segmentation"], height, width),
                     what=f"annotation {ann.get('id')!r} (image {file_name!r})")
            for ann in anns if _known(ann.get("category_id"), category_index) and ann.get("segmentation")]


def _decode(segmentation: Any, height: int, width: int):
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    return rle_to_mask(segmentation)  # RLE carries its own size: a mismatch is reported, not resized away


def _locate_image(json_path: Path, file_name: str) -> Path:
    folder = json_path.parent
    candidates = [folder / file_name, folder / "images" / file_name, folder.parent / "images" / file_name,
                  folder.parent / file_name]
    # Not found: name it where its siblings live, so the report points at the right folder.
    fallback = candidates[1] if (folder / "images").is_dir() else candidates[0]
    return next((p for p in candidates if p.is_file()), fallback)


def _read_listed_image(image_path: Path, json_path: Path, image_id: Any):
    if not image_path.is_file():
        raise DataError(str(image_path), f"missing image file (image id {image_id!r} in {json_path.name})")
    return read_image(image_path)


def _no_instances(height: int, width: int) -> list[Instance]:
    return []


def _is_key(value: Any) -> bool:
    """COCO ids are ints (some exporters write strings); anything else cannot match an id."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _known(category_id: Any, category_index: dict) -> bool:
    return _is_key(category_id) and category_id in category_index
