"""Per-visitor folders: one per browser session, named by a secret token, removed when the session ends or expires.

A session's images, masks, runs and exports live under `<root>/<token>/`, made on its first write; its models are
named "session:<token>/<name>", so only the session that holds the token can load them (demo/access.py). Disk use is
bounded per session (SEGKIT_SESSION_MB) and for all sessions together (SEGKIT_SESSIONS_MB); a session unused for
SEGKIT_SESSION_TTL_S seconds is removed by the next sweep (at most one sweep per SWEEP_EVERY_S; gr.State's
delete_callback removes it sooner). Whoever keeps something per session (the loaded models) registers `on_close`.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from demo import settings

log = logging.getLogger("segkit.demo")
PREFIX = "session:"
_TOKEN = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SWEEP_EVERY_S = 60.0  # new sessions arrive with every API client: sweeping the disk for each would be a cost per call
_lock = threading.Lock()
_last_used: dict[str, float] = {}  # token -> time.monotonic() of its last use
_last_sweep = [float("-inf")]
_close_callbacks: list[Callable[[str], None]] = []


class StorageFull(ValueError):
    """A session (or the Space) is out of its disk allowance."""


def root() -> Path:
    return settings.get().sessions_root


def session_bytes() -> int:
    return int(settings.get().session_mb * settings.MB)


def total_bytes() -> int:
    return int(settings.get().sessions_mb * settings.MB)


def ttl_s() -> float:
    return settings.get().session_ttl_s


def on_close(callback: Callable[[str], None]) -> None:
    """Call `callback(model ref prefix)` when a session closes, e.g. to unload its models."""
    _close_callbacks.append(callback)


def folder(token: str | None) -> Path:
    """The session's folder: `token` when it is live, else a new session. Returns the folder (made by the first
    write into it), whose name is the token — handlers keep it in gr.State."""
    with _lock:
        new = not (token and _TOKEN.fullmatch(token) and token in _last_used)
        if new:
            token = secrets.token_hex(16)
        now = _last_used[token] = time.monotonic()
        due = new and now - _last_sweep[0] > SWEEP_EVERY_S
        if due:
            _last_sweep[0] = now
    if due:
        sweep()  # a new visitor is a good moment to drop expired sessions
    return root() / token


def sweep() -> list[str]:
    """Remove sessions unused for ttl_s(), and folders no live session owns (left by an earlier server process)."""
    now = time.monotonic()
    with _lock:
        expired = [t for t, used in _last_used.items() if now - used > ttl_s()]
        for token in expired:
            del _last_used[token]
        live = set(_last_used)
    orphans = [p.name for p in root().glob("*") if p.is_dir() and _TOKEN.fullmatch(p.name) and p.name not in live]
    for token in expired:
        close(token)
    for token in orphans:
        shutil.rmtree(root() / token, ignore_errors=True)
    return sorted({*expired, *orphans})


def close(token: str | None) -> None:
    """The session ended (gr.State's delete_callback): forget it and delete its folder."""
    if not (token and _TOKEN.fullmatch(token)):
        return
    with _lock:
        _last_used.pop(token, None)
    for callback in _close_callbacks:  # loaded copies of its models go too, not only the files
        callback(f"{PREFIX}{token}/")
    shutil.rmtree(root() / token, ignore_errors=True)
    log.info("session %s… closed, its files removed", token[:6])


def used_bytes(path: Path) -> int:
    """Bytes under `path`; files deleted while it walks (a session closing) count as 0."""
    total = 0
    for item in path.rglob("*"):
        try:
            total += item.stat().st_size if item.is_file() else 0
        except OSError:
            continue
    return total


def check_space(session: Path, more: int = 0) -> None:
    """Raise StorageFull when `more` bytes would take the session or all sessions over their bound."""
    mine, limit = used_bytes(session) + more, session_bytes()
    if mine > limit:
        raise StorageFull(f"your workspace is full ({mine / 2**20:.0f} MB of {limit / 2**20:.0f} MB): remove images "
                          "or models, or export what you have and start a new session")
    everyone = used_bytes(root()) + more if root().is_dir() else more
    if everyone > total_bytes():
        sweep()
        if used_bytes(root()) + more > total_bytes():
            raise StorageFull("this Space's storage for visitors is full right now; try again later")


def model_ref(session: Path, name: str) -> str:
    return f"{PREFIX}{session.name}/{name}"


def models_dir(session: Path) -> Path:
    return session / "models"


def model_folder(ref: str) -> Path | None:
    """The folder of a session model ref, or None when the ref is malformed or its session is not live."""
    token, _, name = ref[len(PREFIX):].partition("/")
    if not _TOKEN.fullmatch(token):
        return None
    with _lock:
        if token not in _last_used:
            return None
    return own_model(root() / token, name)


def own_model(session: Path, name: str) -> Path | None:
    """The folder of model `name` of `session`, or None when the name is not a plain model name or the folder,
    links resolved, is not directly in the session's models folder (it may not exist yet)."""
    if not _NAME.fullmatch(name or ""):
        return None
    folder = models_dir(session) / name
    if folder.resolve().parent != models_dir(session).resolve():
        return None
    return folder
