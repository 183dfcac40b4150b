"""The local hub: model repos as plain folders, laid out like the Hub (`<root>/<owner>/<name>/`), no network.

The default root is `<repo root>/local_hub` (env SEGKIT_LOCAL_HUB overrides). A branch other than main lives in
`<repo folder>/@<revision>/`, so the main revision's folder is exactly what a Hub snapshot of main would be.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hub_cards.kinds import HubError, folder_kind
from trainer.hub_ids import hub_repo_id

REVISION_PREFIX = "@"


def local_hub_dir() -> Path:
    return Path(os.environ.get("SEGKIT_LOCAL_HUB") or Path(__file__).resolve().parents[1] / "local_hub")


def parse_target(target: str) -> tuple[str, str | Path]:
    """("local", repo folder) for "file:PATH" / "local:owner/name" (in the local hub), else ("hub", repo id)."""
    if target.startswith("file:"):
        return "local", Path(target[len("file:"):]).expanduser().resolve()
    if target.startswith("local:"):
        return "local", local_hub_dir() / _repo_id(target[len("local:"):])
    return "hub", _repo_id(target)


def _repo_id(name: str) -> str:
    if hub_repo_id(name) is None:
        raise HubError(f"{name!r}: not a repo id like 'user/name' (letters, digits, '-', '_', '.'; one '/')")
    return name


def revision_dir(repo_dir: str | Path, revision: str | None) -> Path:
    """Where a revision of a local repo lives; None/"main" is the repo folder itself."""
    repo_dir = Path(repo_dir)
    if revision in (None, "main"):
        return repo_dir
    if not revision or "/" in revision or revision.startswith(".") or revision.startswith(REVISION_PREFIX):
        raise HubError(f"{revision!r}: not a valid local revision name (no '/', not starting with '.' or '@')")
    return repo_dir / f"{REVISION_PREFIX}{revision}"


def publish(staged: str | Path, dest: str | Path) -> Path:
    """Replace `dest` with a copy of `staged` as one rename: a reader sees the old repo or the new one, never half.

    Branch folders (`@rev/`) already inside `dest` move into the new version so publishing main keeps them.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    old = None
    try:
        shutil.copytree(staged, tmp, dirs_exist_ok=True)
        if dest.is_dir():
            for branch in dest.glob(f"{REVISION_PREFIX}*"):
                if branch.is_dir() and not (tmp / branch.name).exists():
                    shutil.copytree(branch, tmp / branch.name, copy_function=_link_or_copy)
            old = dest.with_name(tmp.name + ".old")
            os.replace(dest, old)
        os.replace(tmp, dest)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return dest


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link kept branch files (published folders are replaced whole, never edited in place) — no weight copies."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@dataclass(frozen=True)
class LocalModel:
    name: str  # "owner/name", what pull()/load_model() accept
    kind: str
    path: Path
    main_metric: str | None
    value: float | None


def list_local_models(kind: str | None = None, root: str | Path | None = None) -> list[LocalModel]:
    """Every model repo in the local hub (main revisions; segkit's layout or a SAM2 in transformers' format),
    optionally of one kind, sorted by name."""
    root = Path(root) if root is not None else local_hub_dir()
    models = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith(".")):
        try:
            found = folder_kind(folder)
        except HubError:
            continue  # a broken folder should not hide the others from the picker
        if kind is not None and found.name != kind:
            continue
        metric, value = _main_metric(folder, found.main_metric)
        models.append(LocalModel(f"{folder.parent.name}/{folder.name}", found.name, folder, metric, value))
    return models


def _main_metric(folder: Path, default: str) -> tuple[str | None, float | None]:
    try:
        summary = json.loads((folder / "summary.json").read_text())
        metric = summary.get("main_metric", default)
        value = (summary.get("metrics") or {}).get("after", {}).get(metric)
        return metric, float(value) if isinstance(value, (int, float)) else None
    except (OSError, ValueError, AttributeError):
        return default, None
