"""Which model refs a visitor may name, and the folder each one loads from.

Public (the default: demo/settings.py fails closed): the base model, local-hub names ("owner/name"), the visitor's
own session models ("session:<token>/<name>", demo/sessions.py) and Hub ids checked by demo/hub_guard.py — never a
server path; every folder's config is checked against the Space's model limits before anything is built from it.
Open (SEGKIT_OPEN=1, or a loopback-only bind): hub_cards.pull's order — any folder, a local-hub name, a Hub id.
Every refusal that concerns the server says the same words, so a visitor learns nothing about which paths exist,
are folders or hold models (the log keeps the reason).
"""

from __future__ import annotations

import logging
from pathlib import Path

from demo import hub_guard, sessions, settings
from hub_cards.kinds import HubError, check_folder
from hub_cards.local import local_hub_dir
from hub_cards import pull
from trainer.hub_ids import hub_repo_id

log = logging.getLogger("segkit.demo")
REFUSED = ("not a model this Space offers: pick one from the list, one of your own fine-tuned models, or type the "
           "Hub id (owner/name) of a segkit model")


def public() -> bool:
    """Public rules (the default); see demo/settings.py for the two ways to ask for the open ones."""
    return settings.get().public


def model_folder(ref: str, kind: str | None) -> Path:
    """The checked folder of model `ref` (of `kind`; None = any kind), downloaded first when it is a Hub id."""
    if ref.startswith(sessions.PREFIX):  # a visitor's own model: only its (secret) session token names it
        return _checked(sessions.model_folder(ref), ref, kind)
    if not public():
        return pull(ref, kind=kind)
    repo_id = hub_id(ref)
    if repo_id is None:
        log.info("refused model ref %s: not a local-hub name, session model or Hub id", loggable(ref))
        raise HubError(f"{_shown(ref)}: {REFUSED}")
    local = local_hub_dir() / repo_id
    if local.is_dir():
        return _checked(local, ref, kind)
    return _checked(hub_guard.fetch(repo_id, kind), ref, kind)


def hub_id(ref: str) -> str | None:
    """`ref` if it has the shape of a Hub repo id ("owner/name", Hub's character rules), else None."""
    return hub_repo_id(ref)  # no "..", no leading "/", "~" or "-", only [\w.-]: never a server path


def _checked(folder: Path | None, ref: str, kind: str | None) -> Path:
    """`folder` after hub_cards' kind and file checks and the Space's model limits; any failure answers REFUSED
    (the reason goes to the log)."""
    try:
        if folder is None or not folder.is_dir():
            raise HubError("no such folder")
        check_folder(folder, kind)
        hub_guard.check_config(folder, kind)
    except HubError as err:
        log.info("refused model ref %s: %s", loggable(ref), err)
        raise HubError(f"{_shown(ref)}: {REFUSED}") from None
    return folder


def loggable(ref: str) -> str:
    """`ref` for the log: a session token is a secret, so only its first characters are kept; long refs are cut."""
    if ref.startswith(sessions.PREFIX):
        ref = sessions.PREFIX + ref[len(sessions.PREFIX):][:6] + "…"
    return repr(ref[:200])


def _shown(ref: str) -> str:
    """`ref` as the refusal repeats it: cut, so a megabyte-long ref is not echoed back."""
    return ref if len(ref) <= 200 else f"{ref[:200]}…"
