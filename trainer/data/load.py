"""`load_dataset`: the one entry point the trainers use."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from trainer.data.builtin import builtin_dataset_path
from trainer.data.readers.base import load_entry
from trainer.data.sample import SampleRef, SegmentationDataset
from trainer.data.validate import check

log = logging.getLogger("trainer.data")

BUILTIN = "builtin"


def load_dataset(path: str | Path | None, format: str = "auto", skip_bad: bool = False) -> SegmentationDataset:
    """Read and fully validate a dataset; samples stay lazy (decoded again when used).

    Any problem raises DataValidationError listing all of them, unless `skip_bad`: then the bad samples are dropped,
    each problem is logged as a warning and kept in `dataset.skipped`. Problems that leave nothing to train on
    (unparseable annotation file, no images, every sample bad) raise either way.
    """
    if path is None or str(path) == BUILTIN:
        path, format = builtin_dataset_path(), "coco"
    index, report = check(path, format)
    # readers refuse empty datasets, so nothing usable means every image had a problem
    report.raise_unless_usable(index is not None, skip_bad, f"no usable samples in {report.root}: all "
                                                            f"{report.n_images} images have problems")
    if report.problems:
        log.warning("skipping %d bad sample(s) in %s (%s):", len(index.entries) - len(report.good), report.root,
                    report.summary())
        for problem in report.problems:
            log.warning("  skipped: %s", problem)
    refs = [SampleRef(entry.source, partial(load_entry, entry), entry.split, entry.num_objects) for entry in report.good]
    return SegmentationDataset(list(index.class_names), refs, report.root, index.format, report.normalization,
                               skipped=list(report.problems))
