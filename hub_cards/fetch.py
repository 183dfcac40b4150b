"""Get a model repo onto disk and load it: a Hub id (snapshot_download), a local folder, or the local hub.

Resolution order for a ref: "file:PATH" / "local:owner/name" explicitly; an existing folder; a model in the local
hub ("owner/name"); otherwise a Hub repo id. Only safetensors weights and YAML/JSON are read — nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

from hub_cards.kinds import (ALLOW_PATTERNS, MODEL_CONFIG_NAME, SAM2_WEIGHTS_NAME, WEIGHTS_NAME, HubError, check_folder,
                             folder_kind, get_kind)
from hub_cards.local import REVISION_PREFIX, local_hub_dir, parse_target, revision_dir
from trainer.hub_ids import hub_repo_id


def pull(ref: str | Path, kind: str | None = None, revision: str | None = None) -> Path:
    """The folder holding the model repo `ref` (downloaded if it is on the Hub), checked to be of `kind`."""
    folder = _local_folder(str(ref), revision)
    if folder is None:
        folder = _download(str(ref), revision, get_kind(kind).allow_patterns if kind else ALLOW_PATTERNS)
    if not folder.is_dir():
        raise HubError(f"{folder}: no such model folder" + (f" (revision {revision!r})" if revision else ""))
    branches = sorted(p.name[len(REVISION_PREFIX):] for p in folder.glob(f"{REVISION_PREFIX}*") if p.is_dir())
    if branches and not (folder / MODEL_CONFIG_NAME).is_file():
        raise HubError(f"{folder}: no model on main; pass a revision, one of: {', '.join(branches)}")
    check_folder(folder, kind)
    return folder


def load_model(ref: str | Path, kind: str | None = None, device: str = "cpu", revision: str | None = None) -> Any:
    """The loaded model: sam2 → (SAM2Base, Sam2Spec); detectron2 → InstanceSegmenter; semantic →
    SemanticSegmenter (see hub_cards.kinds)."""
    folder = pull(ref, kind, revision)
    return folder_kind(folder).load(folder, device)


def recorded_normalization(folder: str | Path) -> str | None:
    """How the model's training images were brought to uint8 RGB (trainer.data.normalize names), if recorded:
    model_config.yaml's `normalization`, else summary.json's dataset.normalization; None when neither says."""
    folder = Path(folder)
    try:
        config = yaml.safe_load((folder / MODEL_CONFIG_NAME).read_text()) or {}
        if isinstance(config, dict) and isinstance(config.get("normalization"), str):
            return config["normalization"]
        summary = json.loads((folder / "summary.json").read_text())
        name = (summary.get("dataset") or {}).get("normalization")
        return name if isinstance(name, str) else None
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def _local_folder(ref: str, revision: str | None) -> Path | None:
    if ref.startswith(("file:", "local:")):
        return revision_dir(parse_target(ref)[1], revision)
    if Path(ref).expanduser().is_dir():
        return revision_dir(Path(ref).expanduser(), revision)
    in_hub = local_hub_dir() / ref
    if hub_repo_id(ref) and in_hub.is_dir():
        return revision_dir(in_hub, revision)
    return None


def _download(repo_id: str, revision: str | None, allow_patterns: list[str]) -> Path:
    try:
        # An official-layout SAM2 repo's root model.safetensors is transformers' copy of its sam2.safetensors:
        # fetched only for a repo without sam2's own (older segkit layouts, other kinds, transformers-only repos),
        # from the same commit as the rest.
        rest = [p for p in allow_patterns if p != WEIGHTS_NAME]
        folder = Path(snapshot_download(repo_id, repo_type="model", revision=revision, allow_patterns=rest))
        if (folder / SAM2_WEIGHTS_NAME).is_file() or WEIGHTS_NAME not in allow_patterns:
            return folder
        return Path(snapshot_download(repo_id, repo_type="model", revision=folder.name,
                                      allow_patterns=[WEIGHTS_NAME]))
    except HFValidationError as err:
        raise HubError(f"{repo_id!r}: not a folder, a local hub model ({local_hub_dir()}) or a Hub repo id") from err
    except LocalEntryNotFoundError as err:
        raise HubError(f"{repo_id}: not in the local hub ({local_hub_dir()}) and not downloadable from the Hub "
                       f"(offline, or not cached)") from err
    except HfHubHTTPError as err:  # includes repository / revision not found, unauthorized
        raise HubError(f"{repo_id}: cannot download from the Hub ({type(err).__name__}: {str(err).splitlines()[0]})") from err
