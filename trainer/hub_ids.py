"""What counts as a Hub repo id ("owner/name"): one rule for the data layer, the trainers, the cards and the Space.

The shape is the Hub's own (`huggingface_hub.utils.validate_repo_id`: only [\\w.-], no "--" or "..", no leading or
trailing "-" / "."), with exactly one "/" (a bare "name" is a local-hub or zoo name, never a repo here). Callers
that also take local paths look for the path first; `names_hub_repo` does that for the ones that only read text.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

# Names that are files, not repos, though "owner/name.yaml" would pass the Hub's character rules.
FILE_SUFFIXES = (".yaml", ".yml", ".pt", ".pth", ".pkl", ".safetensors", ".json")


def hub_repo_id(ref: object) -> str | None:
    """`ref` when it has the shape of a Hub repo id ("owner/name"), else None. Shape only: no file system look."""
    if not isinstance(ref, str) or ref.count("/") != 1 or ref.startswith((".", "~", "/")):
        return None
    try:
        validate_repo_id(ref)
    except HFValidationError:
        return None
    return ref


def names_hub_repo(ref: object) -> str | None:
    """`ref` when it names a Hub repo rather than something on this machine: a repo id's shape, no existing path of
    that name and no file suffix ("configs/x.yaml" is a file that is missing, not a repo)."""
    repo_id = hub_repo_id(ref)
    if repo_id is None or os.path.exists(repo_id) or Path(repo_id).suffix in FILE_SUFFIXES:
        return None
    return repo_id
