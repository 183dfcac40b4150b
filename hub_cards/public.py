"""What may be published about the machine that made a model: names, never its file system.

A run folder keeps full paths (`--resume` needs them). What leaves the machine — the staged repo's text files and
the errors the Space shows its visitors — goes through `scrub`: every absolute path becomes its last component
("/home/alice/data/coins" -> "coins", "file:/srv/models/x" -> "file:x"), and the dataset is named the way the
card names it (`dataset_name`). It works on text, so every model kind's files are covered without per-kind code.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import yaml

from trainer.data.builtin import VERSION, cache_dir
from trainer.hub_ids import names_hub_repo

# An absolute path inside any text: POSIX "/a/b", home "~/a", Windows "C:\a". Not the "//" of a URL, not the
# second half of "train/val" (a path starts where no word character or path character stands before it).
_ABSOLUTE = re.compile(r"""(?<![\w/.~\\-])(?:~|[A-Za-z]:)?[/\\](?![/\\])[^\s'"`,;()\[\]{}<>|]+""")
_WHOLE = re.compile(r"(?:~|[A-Za-z]:)?[/\\]")  # how a value that is one path starts
# Staged files that are text (everything else in a repo is weights or images).
TEXT_SUFFIXES = (".yaml", ".yml", ".json", ".md", ".txt")


def _last_part(path: str) -> str:
    return PurePosixPath(path.replace("\\", "/")).name or path.strip("/\\~:") or "."


def hub_id_or_none(ref: Any) -> str | None:
    """`ref` when it names a Hub repo ("owner/name"), else None (local paths, zoo configs, "random-init")."""
    return names_hub_repo(ref)


def dataset_name(path: str | None) -> str:
    """How a card names a dataset: "builtin", a Hub dataset id as is, else the folder's name (for a COCO json
    file its folder, not "annotations.json")."""
    text = str(path or "").strip()
    if not text:
        return "custom"
    if text == "builtin" or _is_builtin(text):
        return "builtin"
    if hub_id_or_none(text.split(":")[0]):  # "user/name[:split]", the data layer's Hub id form
        return text
    p = PurePosixPath(text.replace("\\", "/"))
    return (p.parent.name if p.suffix else p.name) or "custom"


def _is_builtin(path: str) -> bool:
    """The built-in sample data's cache folder (the Detectron2 trainer records it resolved)."""
    try:
        return Path(path).expanduser().resolve() == (cache_dir() / f"coins-v{VERSION}").resolve()
    except OSError:
        return False


def scrub(text: str, known: Iterable[tuple[str, str]] = ()) -> str:
    """`text` with every absolute path replaced by its last component.

    known: (local path, public name) pairs replaced first, longest first — e.g. a dataset folder by its name —
    so a path holding spaces goes whole. The home folder is always known (as "~").
    """
    pairs = [(str(local), name) for local, name in known if str(local) not in ("", ".", "/")]
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        pairs.append((home, "~"))
    for local, name in sorted(pairs, key=lambda pair: -len(pair[0])):  # whole path parts only: not /root in /rootfs
        text = re.sub(re.escape(local) + r"(?![\w.-])", lambda _: name, text)
    return _ABSOLUTE.sub(lambda m: _last_part(m.group(0)), text)


def scrub_value(value: Any, known: Iterable[tuple[str, str]] = ()) -> Any:
    """`scrub` applied to every string in parsed YAML/JSON; a value that is one path keeps its spaces together."""
    known = list(known)
    if isinstance(value, dict):
        return {scrub_value(k, known): scrub_value(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, known) for v in value]
    if not isinstance(value, str):
        return value
    for local, name in known:
        if value == str(local):
            return name
    prefix = "file:" if value.startswith("file:") else ""
    path = value[len(prefix):]
    one_path = prefix or not any(c.isspace() for c in path) or os.path.exists(os.path.expanduser(path))
    if _WHOLE.match(path) and not path.startswith(("//", "\\\\")) and one_path:
        return prefix + _last_part(os.path.expanduser(path))
    return scrub(value, known)


def _scrub_text(path: Path, known: list[tuple[str, str]]) -> str:
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        return scrub(text, known)
    data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    public = scrub_value(data, known)
    if public == data:
        return text  # untouched files keep their exact bytes
    return json.dumps(public, indent=2) if suffix == ".json" else yaml.safe_dump(public, sort_keys=False)


def scrub_folder(folder: str | Path, known: Iterable[tuple[str, str]] = ()) -> list[Path]:
    """Scrub every text file under `folder` in place (YAML/JSON value by value, so types and quoting stay right);
    returns the files that changed."""
    known = list(known)
    changed = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
            public = _scrub_text(path, known)
            if public != path.read_text(encoding="utf-8"):
                path.write_text(public, encoding="utf-8")
                changed.append(path)
    return changed
