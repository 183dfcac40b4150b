"""One module per input format; each has `detect(path) -> bool` and `read(path) -> Index`.

Reader modules are imported on first use so `python -m trainer --help` stays fast (Hugging Face `datasets`
alone takes seconds to import).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from trainer.data.readers.base import Index
from trainer.data.sample import DataError

FORMATS = ("coco", "labpics", "mask_folder", "via", "hf")
# Detection order for folders: the most specific markers first (a COCO folder may also hold images/).
_DETECT_ORDER = ("hf", "coco", "via", "labpics", "mask_folder")


def reader(format: str) -> ModuleType:
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r} (one of: {', '.join(FORMATS)})")
    return importlib.import_module(f"trainer.data.readers.{format}")


def detect_format(path: str | Path) -> str:
    """Which reader fits `path`: a folder by its layout, a JSON file by its content, else a Hub id."""
    text = str(path)
    path = Path(path)
    if not path.exists():
        if reader("hf").is_hub_id(text):
            return "hf"
        raise DataError(text, "no such file or folder")
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise DataError(text, "cannot tell the dataset format of this file (a COCO or VIA .json, or a folder)")
        return "via" if reader("via").looks_like_via(path) else "coco"
    for name in _DETECT_ORDER:
        if reader(name).detect(path):
            return name
    raise DataError(text, "cannot tell the dataset format: expected annotations.json/instances*.json (coco), "
                          "via_region_data.json (via), Simple/Train/Image + Instance (labpics), images/ + masks/ "
                          "(mask_folder) or a save_to_disk folder (hf); or pass --format")


def read_index(path: str | Path, format: str = "auto") -> Index:
    """List a dataset (structural problems raise DataError); nothing is decoded yet."""
    format = detect_format(path) if format in ("auto", None, "") else format
    module = reader(format)
    if format == "hf":
        return module.read(path if Path(path).exists() else str(path))
    if not Path(path).exists():
        raise DataError(str(path), "no such file or folder")
    return module.read(Path(path))
