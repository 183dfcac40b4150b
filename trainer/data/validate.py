"""Check a whole dataset and report every problem (not just the first) as '<file>: <problem>' lines."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from trainer.data.check_cache import fingerprint, recall, remember
from trainer.data.normalize import combine
from trainer.data.readers import read_index
from trainer.data.readers.base import Entry, Index, build_sample
from trainer.data.sample import DataError

SKIP_HINT = "use --skip-bad to train without these samples"


class DataValidationError(DataError):
    """Everything wrong with a dataset; `str()` is the multi-line report, `.problems` the individual errors."""

    def __init__(self, root: str, problems: list[DataError], hint: bool = True, headline: str = ""):
        self.problems = list(problems)
        report = "\n".join([(headline or summary_line(self.problems, f" in {root}")) + ":",
                            *(f"  {p}" for p in self.problems), *([SKIP_HINT] if hint else [])])
        super().__init__(root, report)
        self.args = (report,)

    def __str__(self) -> str:
        return self.problem


@dataclass
class ValidationReport:
    root: str
    format: str = ""
    class_names: list[str] = field(default_factory=list)
    problems: list[DataError] = field(default_factory=list)
    good: list[Entry] = field(default_factory=list)  # entries that decoded cleanly, in dataset order
    n_images: int = 0
    n_instances: int = 0
    normalization: str = "none"
    structural: bool = False  # the dataset could not even be listed: skipping samples cannot help

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            return summary_line(self.problems)
        return f"{_count(self.n_images, 'image')}, {_count(self.n_instances, 'instance')}, " \
               f"{_count(len(self.class_names), 'class', 'classes')}: OK"


def summary_line(problems: list[DataError], where: str = "") -> str:
    return f"{_count(len(problems), 'problem')} in {_count(len({p.path for p in problems}), 'file')}{where}"


def _count(n: int, singular: str, plural: str = "") -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


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
