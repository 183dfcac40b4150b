"""What every reader produces (an `Index` of lazy `Entry`s) and the one function that turns an entry into a Sample.

Readers only list files and parse annotation text; decoding and checking happen in `build_sample`, shared by
validation and training, so `validate-data` reports exactly what training would trip over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trainer.data.instances import Crop, InstanceMasks
from trainer.data.normalize import to_uint8_rgb
from trainer.data.sample import DataError, Sample


@dataclass
class Instance:
    """One object mask, decoded on demand. `source`/`what` name it in messages: '<source>: <what>: <problem>'."""

    source: str
    class_id: int
    decode: Callable[[], "np.ndarray | Crop"]  # HxW array (nonzero = object) or its Crop; may raise DataError
                                               # or ValueError
    what: str = ""

    def error(self, problem: str) -> DataError:
        return DataError(self.source, f"{self.what}: {problem}" if self.what else problem)


@dataclass
class Entry:
    """One image and how to get its instances."""

    source: str                                              # names the sample (the image file)
    read_image: Callable[[], np.ndarray]                     # raw decoded array, any dtype / channels
    read_instances: Callable[[int, int], list[Instance]]     # given the decoded image's (height, width)
    problems: list[DataError] = field(default_factory=list)  # found while indexing (unknown category, duplicates)
    expected_size: tuple[int, int] | None = None             # (height, width) an annotation file declares
    size_source: str = ""                                    # ...and which file declares it
    split: str = ""                                          # the dataset's own split of this image, if it has one
    num_objects: int = -1                                    # instances found when the data check decoded it


@dataclass
class Index:
    class_names: list[str]
    entries: list[Entry]
    root: str
    format: str
    problems: list[DataError] = field(default_factory=list)  # not tied to one image (annotation of unknown image)


def build_sample(entry: Entry) -> tuple[Sample | None, list[DataError]]:
    """Decode and check one entry: the Sample, or None and every problem found in it."""
    try:
        return _build(entry)
    except Exception as err:  # noqa: BLE001 - bad data must never end in a traceback; the type name keeps bugs visible
        return None, [*entry.problems, DataError(entry.source, f"could not read ({type(err).__name__}: {err})")]


def load_entry(entry: Entry) -> Sample:
    """`SampleRef.load`: the sample, or its first problem raised (the data changed since it was validated)."""
    sample, problems = build_sample(entry)
    if sample is None:
        first = problems[0]
        extra = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataError(first.path, first.problem + extra)
    return sample


def _build(entry: Entry) -> tuple[Sample | None, list[DataError]]:
    problems = list(entry.problems)
    try:
        image, normalization = to_uint8_rgb(entry.read_image(), entry.source)
    except DataError as err:
        return None, problems + [err]
    h, w = image.shape[:2]
    if entry.expected_size and tuple(entry.expected_size) != (h, w):
        eh, ew = entry.expected_size
        problems.append(DataError(entry.source, f"image size {w}x{h} does not match the size {ew}x{eh} "
                                                f"given in {Path(entry.size_source).name}"))
    try:
        instances = entry.read_instances(h, w)
    except DataError as err:
        problems.append(err)
        instances = []
    masks, class_ids = [], []
    for inst in instances:
        try:
            mask = inst.decode()  # one full-size mask at a time at most: it is kept as its crop
            mask = mask if isinstance(mask, Crop) else np.asarray(mask)
        except DataError as err:
            problems.append(err)
            continue
        except ValueError as err:  # the geometry helpers' "what is wrong" (bad polygon, bad RLE)
            problems.append(inst.error(f"invalid mask: {err}"))
            continue
        if mask.shape != (h, w):
            size = f"{mask.shape[1]}x{mask.shape[0]}" if len(mask.shape) == 2 else str(mask.shape)
            problems.append(inst.error(f"mask size {size} does not match image size {w}x{h} "
                                       f"({Path(entry.source).name})"))
        elif not mask.any():
            problems.append(inst.error("empty mask (all zeros)"))
        else:
            masks.append(mask if isinstance(mask, Crop) else Crop.from_dense(mask))
            class_ids.append(inst.class_id)
    # Why drop the whole image for one bad instance: the rest of it would then teach "that object is background".
    if problems:
        return None, problems
    return Sample(image, InstanceMasks(h, w, masks), np.asarray(class_ids, np.int64), entry.source, normalization, entry.split), []


def read_json(path: Path) -> Any:
    """Parse a JSON file; malformed or truncated text is a DataError that says where it broke."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(str(path), "file not found") from None
    except UnicodeDecodeError as err:
        raise DataError(str(path), f"not UTF-8 text (byte {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        kind = "truncated JSON" if err.pos >= len(text.rstrip()) else "malformed JSON"
        raise DataError(str(path), f"{kind} at line {err.lineno} column {err.colno} (char {err.pos}): "
                                   f"{err.msg}") from None


def read_class_names(folder: Path) -> list[str] | None:
    """Optional `classes.txt` (one name per line) or `classes.json` (a list of names) in `folder`."""
    txt, js = folder / "classes.txt", folder / "classes.json"
    if txt.is_file():
        source, names = txt, [line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif js.is_file():
        source, names = js, read_json(js)
        if not (isinstance(names, list) and all(isinstance(n, str) and n.strip() for n in names)):
            raise DataError(str(js), "must be a JSON list of class names")
    else:
        return None
    if not names:
        raise DataError(str(source), "lists no class names")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(str(source), f"duplicate class names: {', '.join(duplicates)}")
    return list(names)


def fixed(value: Any) -> Callable[[], Any]:
    """A picklable 'return this' (lambdas would stop datasets from crossing into spawned DataLoader workers)."""
    return _Fixed(value)


@dataclass
class _Fixed:
    value: Any

    def __call__(self) -> Any:
        return self.value
