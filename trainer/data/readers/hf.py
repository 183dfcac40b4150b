"""Hugging Face `datasets`: a local `save_to_disk` folder, or a Hub id (`user/name` or `user/name:split`).

Columns (found by feature type and name):
  image   an Image column ("image", "img", "pixel_values", else the first Image column that is not a mask)
  masks   either a list of Images ("masks", "instance_masks", "instances"): one binary mask per instance, with
          an optional list-of-class column ("class_ids", "labels", "categories", "category_id", "classes");
          ClassLabel names become the class names, plain ints become "class_<i>", none means one class "object";
          or one label-index image/2-D array ("mask", "segmentation", "label", "annotation", "label_map",
          "instance_map"): each distinct nonzero value is an instance of the single class "object".
A saved DatasetDict uses its "train" split (else its first); point at a split's sub-folder to pick another.
Images are decoded by us from the stored bytes (not by `datasets`) so corrupt ones are reported like files.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from trainer.data.readers.base import Entry, Index, Instance, fixed
from trainer.data.readers.images import decode_bytes, read_image, read_mask
from trainer.data.readers.masks import label_map_to_instances
from trainer.data.sample import DataError
from trainer.hub_ids import names_hub_repo

NAME = "hf"
_SPLIT = re.compile(r"[\w.-]+")  # "owner/name:split"
IMAGE_COLUMNS = ("image", "img", "pixel_values")
MASK_LIST_COLUMNS = ("masks", "instance_masks", "instances")
LABEL_MAP_COLUMNS = ("mask", "segmentation", "label", "annotation", "label_map", "instance_map")
CLASS_COLUMNS = ("class_ids", "labels", "categories", "category_id", "classes")


def detect(path: Path) -> bool:
    saved_dataset = (path / "dataset_info.json").is_file() and (path / "state.json").is_file()
    return path.is_dir() and (saved_dataset or (path / "dataset_dict.json").is_file())


def is_hub_id(text: str) -> bool:
    """"owner/name" or "owner/name:split". "data/trian" next to an existing data/ is a mistyped path, not a Hub
    repo (and the Hub lookup is slow)."""
    repo, colon, split = text.partition(":")
    split_ok = not colon or _SPLIT.fullmatch(split) is not None
    return bool(names_hub_repo(repo)) and split_ok and not Path(repo).parent.is_dir()


def read(path: Path | str) -> Index:
    dataset = _open(str(path))
    image_col, mask_col, class_col = _columns(dataset.features, str(path))
    class_names, class_index = _classes(dataset, mask_col, class_col)
    table = dataset.with_format("arrow")  # raw stored values: we decode the image bytes ourselves
    root = str(path)
    entries = [Entry(f"{root}[{i}]", partial(_read_image, table, i, image_col, f"{root}[{i}]"),
                     partial(_instances, table, i, mask_col, class_col, class_index, f"{root}[{i}].{mask_col}"))
               for i in range(len(dataset))]
    if not entries:
        raise DataError(root, "the dataset has no rows")
    return Index(class_names, entries, root, NAME)


def _open(path: str):
    # lazy: Hugging Face datasets (and pyarrow) only for hf data; seconds to import
    import datasets

    if Path(path).exists():
        try:
            dataset = datasets.load_from_disk(path)
        except Exception as err:  # noqa: BLE001 - datasets raises many types for a folder that is not a dataset
            raise DataError(path, f"not a saved Hugging Face dataset ({type(err).__name__}: {err})") from None
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset["train" if "train" in dataset else next(iter(dataset))]
        return dataset
    repo, _, split = path.partition(":")
    try:
        return datasets.load_dataset(repo, split=split or "train")
    except Exception as err:  # noqa: BLE001 - network / missing repo / bad split all mean "cannot read it"
        raise DataError(path, f"no such local folder, and cannot load it as a Hugging Face Hub dataset "
                              f"({type(err).__name__}: {err})") from None


def _columns(features: Any, source: str) -> tuple[str, str, str | None]:
    # lazy: Hugging Face datasets (and pyarrow) only for hf data; seconds to import
    import datasets

    def inner(feature: Any) -> Any:
        return getattr(feature, "feature", None)

    images = [n for n, f in features.items() if isinstance(f, datasets.Image)]
    image_lists = [n for n, f in features.items() if isinstance(inner(f), datasets.Image)]
    mask_col = next((n for n in MASK_LIST_COLUMNS if n in image_lists), None)
    mask_col = mask_col or next((n for n in LABEL_MAP_COLUMNS if n in features), None)
    image_col = next((n for n in IMAGE_COLUMNS if n in images), None)
    image_col = image_col or next((n for n in images if n != mask_col), None)
    if image_col is None:
        raise DataError(source, f"no image column (an Image feature; columns: {', '.join(features)})")
    if mask_col is None:
        raise DataError(source, f"no mask column (one of {', '.join(MASK_LIST_COLUMNS + LABEL_MAP_COLUMNS)}; "
                                f"columns: {', '.join(features)})")
    class_col = next((n for n in CLASS_COLUMNS if n in features), None) if mask_col in image_lists else None
    return image_col, mask_col, class_col


def _classes(dataset: Any, mask_col: str, class_col: str | None) -> tuple[list[str], dict[int, int] | None]:
    """Class names, and for a class column the map stored id -> class id (None: everything is class 0)."""
    if class_col is None:
        return ["object"], None
    names = getattr(getattr(dataset.features[class_col], "feature", None), "names", None)
    if names:
        return list(names), {k: k for k in range(len(names))}
    # lazy: Hugging Face datasets (and pyarrow) only for hf data; seconds to import
    import pyarrow.compute as pc

    column = dataset.with_format("arrow").data.column(class_col)
    flat = pc.list_flatten(column) if hasattr(column.type, "value_type") else column
    ids = sorted({int(v) for v in flat.to_pylist() if v is not None and int(v) >= 0})
    return [f"class_{v}" for v in ids] or ["object"], {v: k for k, v in enumerate(ids)}


def _cell(table: Any, row: int, column: str) -> Any:
    return table[row].column(column)[0].as_py()


def _decode(value: Any, source: str, as_mask: bool) -> np.ndarray:
    if isinstance(value, dict):
        if value.get("bytes"):
            return decode_bytes(value["bytes"], source, as_mask=as_mask)
        if value.get("path"):
            return (read_mask if as_mask else read_image)(value["path"])
        raise DataError(source, "no image data (neither bytes nor path)")
    if value is None:
        raise DataError(source, "missing value")
    return np.asarray(value)  # Array2D / nested lists


def _read_image(table: Any, row: int, column: str, source: str) -> np.ndarray:
    return _decode(_cell(table, row, column), source, as_mask=False)


def _instances(table: Any, row: int, mask_col: str, class_col: str | None, class_index: dict[int, int] | None,
               source: str, height: int, width: int) -> list[Instance]:
    value = _cell(table, row, mask_col)
    if isinstance(value, list) and (not value or isinstance(value[0], dict)):
        return _mask_list(value, table, row, class_col, class_index, source)
    label = _decode(value, source, as_mask=True)
    if label.ndim == 3:
        label = label[..., 0]
    return [Instance(source, 0, fixed(region), what=f"label {v}") for v, region in label_map_to_instances(label, False)]


def _mask_list(masks: list, table: Any, row: int, class_col: str | None, class_index: dict[int, int] | None,
               source: str) -> list[Instance]:
    stored = _cell(table, row, class_col) if class_col else [None] * len(masks)
    if not isinstance(stored, list) or len(stored) != len(masks):
        raise DataError(source, f"{len(masks)} masks but {class_col} has "
                                f"{len(stored) if isinstance(stored, list) else 'no'} entries")
    unknown = [v for v in stored if class_index is not None and v not in class_index]
    if unknown:
        raise DataError(source, f"unknown category id {', '.join(map(str, unknown))} in {class_col}")
    return [Instance(f"{source}[{k}]", class_index[v] if class_index is not None else 0,
                     partial(_binary, mask, f"{source}[{k}]"))
            for k, (mask, v) in enumerate(zip(masks, stored))]


def _binary(value: Any, source: str) -> np.ndarray:
    mask = _decode(value, source, as_mask=True)
    return mask.any(axis=2) if mask.ndim == 3 else mask
