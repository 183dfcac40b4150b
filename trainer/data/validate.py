"""Check a whole dataset and report every problem (not just the first) as '<file>: <problem>' lines."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from trainer.data.check_cache import fingerprint, recall, remember
from trainer.data.normalize import combine
from trainer.data.readers import read_index
from trainer.data.readers.base import Index, build_sample
from trainer.data.report import DataValidationError, ValidationReport
from trainer.data.sample import DataError

def check(path: str | Path, format: str = "auto") -> tuple[Index | None, ValidationReport]:
    """List and fully decode every sample once. Never raises for bad data.

    A dataset checked before and unchanged since (the same files with the same sizes and modification times) is
    not decoded again: its verdict comes from the check cache (`check_cache.py`)."""
    try:
        index = read_index(path, format)
    except DataError as err:
        return None, ValidationReport(str(path), problems=[err], structural=True)
    stamp = fingerprint(path, index)
    report = recall(stamp, index)
    if report is None:
        report = decode_all(index)
        remember(stamp, index, report)
    return index, report


def decode_all(index: Index) -> ValidationReport:
    """Decode every entry (a few threads) and collect its problems, object counts and normalisations."""
    report = ValidationReport(index.root, index.format, list(index.class_names), n_images=len(index.entries))
    problems = list(index.problems)
    normalizations = []
    # Decoding is I/O + C code that releases the GIL: a few threads make big datasets noticeably faster.
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        decoded = tqdm(pool.map(build_sample, index.entries), total=len(index.entries), desc="checking data",
                       leave=False, disable=len(index.entries) < 200)
        for entry, (sample, entry_problems) in zip(index.entries, decoded):
            if sample is None:
                problems.extend(entry_problems)
                continue
            report.good.append(entry)
            entry.num_objects = sample.num_objects
            report.n_instances += len(sample.class_ids)
            normalizations.append(sample.normalization)
    unique: dict[str, DataError] = {}
    for problem in problems:  # a problem shared by several images (a duplicate id) is one report line
        unique.setdefault(str(problem), problem)
    report.problems = list(unique.values())
    report.normalization = combine(normalizations) if normalizations else "none"
    return report


def validate_data(path: str | Path, format: str = "auto") -> list[DataError]:
    """Every problem in the dataset at `path` (empty list = clean)."""
    return check(path, format)[1].problems
