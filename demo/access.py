"""Which model refs a visitor may name, and the folder each one loads from.

Private (a local run, the default): hub_cards.pull's order — any folder, a local-hub name, a Hub id.
Public (SPACE_ID set, or SEGKIT_PUBLIC=1): the base model, local-hub names ("owner/name"), the visitor's own session
models ("session:<token>/<name>", demo/sessions.py) and Hub ids checked by demo/hub_guard.py — never a server path.
Every refusal that concerns the server says the same words, so a visitor learns nothing about which paths exist,
are folders or hold models (the log keeps the reason).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hub_cards.kinds import HubError, check_folder
from hub_cards.local import local_hub_dir

log = logging.getLogger("segkit.demo")
REFUSED = ("not a model this Space offers: pick one from the list, one of your own fine-tuned models, or type the "
           "Hub id (owner/name) of a segkit model")


def public() -> bool:
    """A public Space: Hugging Face sets SPACE_ID; SEGKIT_PUBLIC=1 asks for the same rules elsewhere."""
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("SEGKIT_PUBLIC", "") not in ("", "0")


def model_folder(ref: str, kind: str | None) -> Path:
    """The checked folder of model `ref` (of `kind`; None = any kind), downloaded first when it is a Hub id."""
    from demo import sessions

    if ref.startswith(sessions.PREFIX):  # a visitor's own model: only its (secret) session token names it
        return _checked(sessions.model_folder(ref), ref, kind)
    if not public():
        from hub_cards import pull

        return pull(ref, kind=kind)
    repo_id = hub_id(ref)
    if repo_id is None:
        log.info("refused model ref %r: not a local-hub name, session model or Hub id", ref)
        raise HubError(f"{ref}: {REFUSED}")
    local = local_hub_dir() / repo_id
    if local.is_dir():
        return _checked(local, ref, kind)
    from demo import hub_guard

    return _checked(hub_guard.fetch(repo_id, kind), ref, kind)


def hub_id(ref: str) -> str | None:
    """`ref` if it has the shape of a Hub repo id ("owner/name", Hub's character rules), else None."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if ref.count("/") != 1 or ref.startswith((".", "~")):
        return None
    try:
        validate_repo_id(ref)  # no "..", no leading "/" or "-", only [\w.-]
    except HFValidationError:
        return None
    return ref


def _checked(folder: Path | None, ref: str, kind: str | None) -> Path:
    """`folder` after hub_cards' kind and file checks; any failure answers REFUSED (the reason goes to the log)."""
    try:
        if folder is None or not folder.is_dir():
            raise HubError("no such folder")
        check_folder(folder, kind)
    except HubError as err:
        log.info("refused model ref %r: %s", ref, err)
        raise HubError(f"{ref}: {REFUSED}") from None
    return folder
