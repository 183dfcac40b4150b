"""Model repos for fine-tuned runs: model cards, push to the Hub or the local hub, pull and load.

    from hub_cards import load_model, push_run, list_local_models
    url = push_run("runs/sam2-001", "me/sam2-vessels")        # or "file:PATH", "local:me/sam2-vessels"
    model, spec = load_model("me/sam2-vessels", kind="sam2")  # Hub id, local hub name, folder, or file:PATH

Names are imported lazily so `python -m trainer --help` does not import huggingface_hub.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HubError": "hub_cards.kinds", "KINDS": "hub_cards.kinds", "get_kind": "hub_cards.kinds",
    "build_card": "hub_cards.card",
    "stage_run": "hub_cards.repo", "push_run": "hub_cards.repo",
    "pull": "hub_cards.fetch", "load_model": "hub_cards.fetch",
    "LocalModel": "hub_cards.local", "list_local_models": "hub_cards.local", "local_hub_dir": "hub_cards.local",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hub_cards' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
