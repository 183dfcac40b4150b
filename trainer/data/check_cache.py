"""The data check's verdicts, remembered per dataset so an unchanged dataset is not decoded again (a resumed run,
a second trainer, `evaluate` after training).

Keyed by the dataset's location and format; valid while its fingerprint — every file under it with its size and
modification time, and the reader's listing — is unchanged. Stored as small JSON files in `$SEGKIT_CACHE_DIR/checks`
(default ~/.cache/segkit/checks), written atomically; `SEGKIT_CHECK_CACHE=0` turns it off. A missing, stale or
unreadable record just means the dataset is decoded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from trainer.data.readers.base import Index
from trainer.data.report import ValidationReport
from trainer.data.sample import DataError
from trainer.user_cache import user_cache

VERSION = 1  # bump when what a check finds changes (new checks): old verdicts are then ignored


def enabled() -> bool:
    return os.environ.get("SEGKIT_CHECK_CACHE", "1") != "0"


def cache_dir() -> Path:
    return user_cache("checks")


def fingerprint(path: str | Path, index: Index) -> str | None:
    """sha256 of every file under `path` (relative name, size, mtime) and the listing; None for non-local data."""
    root = Path(path)
    if not enabled() or not root.exists():
        return None
    digest = hashlib.sha256(f"v{VERSION}|{index.format}|{len(index.entries)}".encode())
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(root) if file != root else file.name}|{stat.st_size}|"
                      f"{stat.st_mtime_ns}\n".encode())
    for entry in index.entries:
        digest.update(entry.source.encode() + b"\n")
    return digest.hexdigest()


def _record_path(index: Index) -> Path:
    key = hashlib.sha256(f"{Path(index.root).resolve()}|{index.format}".encode()).hexdigest()[:32]
    return cache_dir() / f"{key}.json"


def recall(stamp: str | None, index: Index) -> ValidationReport | None:
    """The remembered report for this exact dataset state, or None."""

    if stamp is None:
        return None
    try:
        record = json.loads(_record_path(index).read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != stamp:
        return None
    counts, bad = record["counts"], set(record["bad"])
    report = ValidationReport(index.root, index.format, list(index.class_names), n_images=len(index.entries),
                              n_instances=record["n_instances"], normalization=record["normalization"])
    report.problems = [DataError(p["path"], p["problem"]) for p in record["problems"]]
    for entry in index.entries:
        if entry.source not in bad:
            entry.num_objects = int(counts.get(entry.source, -1))
            report.good.append(entry)
    return report


def remember(stamp: str | None, index: Index, report: ValidationReport) -> None:
    if stamp is None:
        return
    good = {entry.source for entry in report.good}
    record = {"fingerprint": stamp, "root": Path(index.root).name, "n_instances": report.n_instances,
              "normalization": report.normalization,
              "counts": {entry.source: entry.num_objects for entry in report.good},
              "bad": [entry.source for entry in index.entries if entry.source not in good],
              "problems": [{"path": p.path, "problem": p.problem} for p in report.problems]}
    target = _record_path(index)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(tmp, target)  # atomic: a killed run never leaves half a record
    except OSError:
        pass  # a read-only home: checks are simply not remembered
