"""The shared data layer: every reader yields the same `Sample`; both trainers consume a `SegmentationDataset`.

    load_dataset(path, format="auto", skip_bad=False)   read + fully validate (path "builtin": the sample data)
    validate_data(path, format="auto")                  every problem, as DataError('<file>: <problem>')
    detect_format(path)                                 "coco" | "labpics" | "mask_folder" | "via" | "hf"
    builtin_dataset_path()                              the built-in COCO folder (written once to a cache)
    write_coco(dataset, out_dir)                        export any dataset as COCO (RLE or polygons)
    normalize.to_uint8_rgb / normalize.apply_normalization

Heavier modules are imported on first use so importing `trainer.data.sample` (and `--help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from trainer.data.sample import DataError, Sample, SampleRef, SegmentationDataset

_LAZY = {
    "load_dataset": "trainer.data.load",
    "validate_data": "trainer.data.validate",
    "DataValidationError": "trainer.data.report",
    "detect_format": "trainer.data.readers",
    "FORMATS": "trainer.data.readers",
    "builtin_dataset_path": "trainer.data.builtin",
    "write_coco": "trainer.data.export",
    "to_uint8_rgb": "trainer.data.normalize",
    "apply_normalization": "trainer.data.normalize",
}

__all__ = ["DataError", "Sample", "SampleRef", "SegmentationDataset", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainer.data' has no attribute {name!r}")
