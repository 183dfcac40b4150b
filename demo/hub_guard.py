"""Hub models a public Space may download: checked from the Hub's model info first, kept in a bounded cache.

A visitor's Hub id is downloaded only when its file list says it is a segkit model of a known kind (or a SAM2 in
transformers' layout) and the files a pull fetches add up to less than SEGKIT_HUB_MAX_MB. Downloads go to their own
cache folder (not the base model's), trimmed least-recently-used first to SEGKIT_HUB_CACHE_MB after each download.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import HfApi, scan_cache_dir, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.hf_api import ModelInfo

from demo import settings
from hub_cards.kinds import KINDS, MODEL_CONFIG_NAME, HubError, pull_patterns
from trainer.checkpoint import WEIGHTS_NAME, CheckpointError
from trainer.model_limits import check_d2_cfg, check_image_size, check_semantic_head

log = logging.getLogger("segkit.demo")
MB = settings.MB


def max_repo_bytes() -> int:
    """The largest repo a visitor may load (SEGKIT_HUB_MAX_MB)."""
    return int(settings.get().hub_max_mb * MB)


def max_cache_bytes() -> int:
    return int(settings.get().hub_cache_mb * MB)


def cache_dir() -> Path:
    return settings.get().hub_cache_dir


def check_config(folder: Path, kind: str | None) -> None:
    """The folder's config within the Space's model limits (input size, layer sizes), read before anything is
    built from it; HubError says which limit. The trainer's own, wider bounds are trainer/model_limits.py."""
    config = _read_config(folder)
    limits = settings.get()
    source = config.pop("_source")
    try:
        if (config.get("kind") or kind) == "detectron2":
            spec = config.get("spec") or {}
            inputs = {"MIN_SIZE_TEST": spec.get("min_size_test"), "MAX_SIZE_TEST": spec.get("max_size_test")}
            check_d2_cfg({"INPUT": {k: v for k, v in inputs.items() if v is not None}}, source,
                         limits.d2_max_test_size)
            check_d2_cfg(config.get("cfg") or {}, source, limits.d2_max_test_size)
            return
        if "decoder_channels" in config:  # a semantic head
            check_semantic_head(config["decoder_channels"], len(config.get("class_names") or []), source)
        for size in _image_sizes(config):
            check_image_size(size, source, limits.model_max_image_size)
    except CheckpointError as err:
        raise HubError(str(err)) from None


def _read_config(folder: Path) -> dict[str, Any]:
    """model_config.yaml (segkit's layout) or config.json (transformers'), bounded in size; {} when neither."""
    for name, parse in ((MODEL_CONFIG_NAME, yaml.safe_load), ("config.json", json.loads)):
        path = folder / name
        if not path.is_file():
            continue
        if path.stat().st_size > settings.get().config_max_bytes:
            raise HubError(f"{name}: {path.stat().st_size} bytes, over the limit of "
                           f"{settings.get().config_max_bytes} for a model config")
        try:
            data = parse(path.read_text())
        except (ValueError, yaml.YAMLError) as err:
            raise HubError(f"{name}: not valid ({type(err).__name__})") from None
        return {**(data if isinstance(data, dict) else {}), "_source": name}
    return {"_source": "config"}


def _image_sizes(config: Any) -> list[Any]:
    """Every `image_size` in a (nested) config: segkit's is one number, transformers' a pair per sub-config."""
    if isinstance(config, dict):
        found = []
        for key, value in config.items():
            if key == "image_size":
                found += value if isinstance(value, list) else [value]
            else:
                found += _image_sizes(value)
        return found
    if isinstance(config, list):
        return [size for item in config for size in _image_sizes(item)]
    return []


def check_info(info: ModelInfo, kind: str | None, max_bytes: int | None = None) -> int:
    """The bytes a pull of this repo downloads, after checking the repo is a loadable model of `kind` (None: any
    known kind); raises HubError saying what is wrong. Needs info from model_info(..., files_metadata=True)."""
    repo = info.id
    files = {s.rfilename: s.size for s in info.siblings or []}
    kinds = [kind] if kind else list(KINDS)
    if kind is not None and kind not in KINDS:
        raise HubError(f"unknown model kind {kind!r}")
    tags = set(info.tags or [])
    segkit_layout = MODEL_CONFIG_NAME in files
    transformers_sam2 = "config.json" in files and "sam2" in tags and "sam2" in kinds
    if WEIGHTS_NAME not in files or not (segkit_layout or transformers_sam2):
        raise HubError(f"{repo}: not a segkit model repo (it needs {WEIGHTS_NAME} and {MODEL_CONFIG_NAME}, or a "
                       f"SAM2 in transformers' layout)")
    if segkit_layout and not tags.intersection(kinds):
        wanted = " or ".join(kinds)
        raise HubError(f"{repo}: its tags do not say it is a {wanted} model (segkit's push tags the kind)")
    patterns = pull_patterns(files)
    fetched = [name for name in files if any(fnmatch.fnmatch(name, p) for p in patterns)]
    if any(files[name] is None for name in fetched):
        raise HubError(f"{repo}: the Hub did not give the file sizes; cannot check the download size")
    total = sum(files[name] for name in fetched)
    limit = max_repo_bytes() if max_bytes is None else max_bytes
    if total > limit:
        raise HubError(f"{repo}: {total / MB:.0f} MB to download, over this Space's limit of {limit / MB:.0f} MB")
    return total


def fetch(repo_id: str, kind: str | None) -> Path:
    """Check `repo_id` on the Hub, download what a pull needs into the bounded cache, trim it; the snapshot folder."""
    if settings.get().is_offline:
        raise HubError(f"{repo_id}: cannot check it on the Hub (this Space is offline)")
    try:
        # token=False: a visitor's pick is fetched anonymously, never with the Space owner's token
        info = HfApi().model_info(repo_id, files_metadata=True, token=False, timeout=10)
        check_info(info, kind)
        folder = Path(snapshot_download(repo_id, revision=info.sha, cache_dir=cache_dir(),
                                        allow_patterns=pull_patterns(s.rfilename for s in info.siblings or []),
                                        token=False))
    except HubError:
        raise
    except OfflineModeIsEnabled as err:
        raise HubError(f"{repo_id}: cannot check it on the Hub (this Space is offline)") from err
    except HfHubHTTPError as err:  # not found, gated, private: all the same to an anonymous visitor
        raise HubError(f"{repo_id}: not a public model on the Hub ({type(err).__name__})") from err
    except Exception as err:  # connection refused, DNS, timeouts (the HTTP client's own error classes)
        raise HubError(f"{repo_id}: cannot reach the Hub to check it ({type(err).__name__})") from err
    trim_cache(cache_dir(), max_cache_bytes(), keep=repo_id)
    return folder


def trim_cache(folder: str | Path, max_bytes: int, keep: str | None = None) -> list[str]:
    """Delete cached repos, least recently used first, until the cache holds at most `max_bytes` (never `keep`, the
    one just fetched); returns the repo ids deleted."""
    if not Path(folder).is_dir():
        return []
    info = scan_cache_dir(folder)
    size = info.size_on_disk
    deleted = []
    for repo in sorted(info.repos, key=lambda r: r.last_accessed):
        if size <= max_bytes:
            break
        if repo.repo_id == keep:
            continue
        info.delete_revisions(*(rev.commit_hash for rev in repo.revisions)).execute()
        size -= repo.size_on_disk
        deleted.append(repo.repo_id)
        log.info("hub cache over %d MB: removed %s", max_bytes // MB, repo.repo_id)
    return deleted
