"""Turn a run folder into a model repo folder and push it: to the Hub (upload_folder) or to the local hub.

Only an allow-list of files is copied (never state/, never a pickle), so what is staged is what is published.
The token is never handled here beyond passing it to HfApi: huggingface_hub reads HF_TOKEN or the stored login.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from safetensors import SafetensorError, safe_open

from hub_cards.card import build_card
from hub_cards.kinds import CARD_NAME, REQUIRED_FILES, HubError, check_folder
from hub_cards.local import local_hub_dir, parse_target, publish, revision_dir
from hub_cards.public import dataset_name, scrub_folder, scrub_value
from trainer.checkpoint import CheckpointError

COPIED = (*REQUIRED_FILES, "config.yaml", "summary.json", "curves.png")
MAX_OVERLAYS = 4


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise HubError(f"{path}: missing; push a finished run folder (the trainers write summary.json at the end)")
    try:
        summary = json.loads(path.read_text())
    except ValueError as err:
        raise HubError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(summary, dict):
        raise HubError(f"{path}: expected a JSON object")
    return summary


def _check_weights(path: Path) -> None:
    """Refuse to publish weights that no one could load (reads the safetensors header only)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError) as err:
        raise HubError(f"{path}: not a readable safetensors file ({err})") from err


def stage_run(run_dir: str | Path, out_dir: str | Path, repo_id: str | None = None,
              max_overlays: int = MAX_OVERLAYS) -> Path:
    """Build the repo folder for a run: weights, configs, metrics.json, summary, curves, a few overlays, README.md.

    The staged text names no local path (hub_cards.public): the dataset by its name, other paths by their last part.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    summary = read_summary(run_dir)
    kind = check_folder(run_dir, expected=summary.get("kind"))
    _check_weights(run_dir / REQUIRED_FILES[0])
    if out_dir.exists() and any(out_dir.iterdir()):
        raise HubError(f"{out_dir}: not empty; stage into a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, out_dir / name)
    overlays = sorted((run_dir / "overlays").glob("*.png"))[:max_overlays]
    for image in overlays:
        (out_dir / "overlays").mkdir(exist_ok=True)
        shutil.copy2(image, out_dir / "overlays" / image.name)
    try:  # each ecosystem's own files (sam2: transformers' at the root + sam2.safetensors; detectron2: its cfg)
        kind.stage_extra(run_dir, out_dir)
    except CheckpointError as err:
        raise HubError(f"{run_dir}: cannot write the {kind.name} model's files for other libraries ({err})") from err
    known = _known_paths(run_dir, summary)
    summary = scrub_value(summary, known)
    after = (summary.get("metrics") or {}).get("after") or {}
    (out_dir / "metrics.json").write_text(json.dumps(after, indent=2))
    card = build_card(summary, repo_id or f"local/{run_dir.name}",
                      curves="curves.png" if (out_dir / "curves.png").is_file() else None,
                      overlays=[f"overlays/{p.name}" for p in overlays], repo=out_dir)
    card.save(out_dir / CARD_NAME)
    scrub_folder(out_dir, known)
    return out_dir


def _known_paths(run_dir: Path, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Local paths the staged files may hold and their public names: the dataset (as given and resolved), the run."""
    data = str((summary.get("dataset") or {}).get("path") or "")
    pairs = [(str(run_dir.resolve()), run_dir.resolve().name)]
    if data:
        name = dataset_name(data)
        pairs += [(data, name), (str(Path(data).expanduser().resolve()), name)]
    return [(local, name) for local, name in pairs if local != name]


def commit_message(summary: dict[str, Any]) -> str:
    """e.g. "segkit sam2: miou_box 0.41 → 0.63" (the main metric before and after fine-tuning)."""
    metric = summary.get("main_metric")
    metrics = summary.get("metrics") or {}
    before, after = (metrics.get("before") or {}).get(metric), (metrics.get("after") or {}).get(metric)
    head = f"segkit {summary.get('kind')}"
    if isinstance(after, (int, float)):
        change = f"{before:.3g} → {after:.3g}" if isinstance(before, (int, float)) else f"{after:.3g}"
        return f"{head}: {metric} {change}"
    return f"{head}: fine-tuned model"


def push_run(run_dir: str | Path, target: str, private: bool = False, revision: str | None = None,
             token: str | None = None, api: HfApi | None = None) -> str:
    """Publish a run: target "user/name" (Hub), "file:PATH" or "local:user/name" (local hub). Returns URL or path.

    token: None = huggingface_hub's own lookup (HF_TOKEN, then `hf auth login`); it is never printed or stored.
    """
    where, dest = parse_target(target)
    summary = read_summary(run_dir)
    with tempfile.TemporaryDirectory(prefix="segkit-push-") as tmp:
        staged = stage_run(run_dir, Path(tmp) / "repo", repo_id=_card_ref(where, dest))
        if where == "local":
            return str(publish(staged, revision_dir(dest, revision)))
        return _upload(staged, str(dest), commit_message(summary), private, revision, api or HfApi(token=token))


def _card_ref(where: str, dest: str | Path) -> str:
    """The ref the card's usage snippet loads: the repo id, the local hub name, or file:PATH."""
    if where == "hub":
        return str(dest)
    dest = Path(dest)
    hub = local_hub_dir().resolve()
    if dest.resolve().parent.parent == hub:
        return f"{dest.parent.name}/{dest.name}"
    return f"file:{dest}"


def _upload(staged: Path, repo_id: str, message: str, private: bool, revision: str | None, api: HfApi) -> str:
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(staged), repo_type="model", revision=revision,
                                   commit_message=message, delete_patterns=["overlays/*.png"])
    except HfHubHTTPError as err:
        raise HubError(f"{repo_id}: push failed ({err})") from err
    return str(getattr(commit, "commit_url", None) or commit)
