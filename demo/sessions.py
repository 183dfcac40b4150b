"""Per-visitor folders: one per browser session, named by a secret token, removed when the session ends or expires.

A session's images, masks, runs and exports live under `<root>/<token>/`; its models are named
"session:<token>/<name>", so only the session that holds the token can load them (demo/access.py). Disk use is
bounded per session (SEGKIT_SESSION_MB) and for all sessions together (SEGKIT_SESSIONS_MB); a session unused for
SEGKIT_SESSION_TTL_S seconds is removed by the next sweep (gr.State's delete_callback removes it sooner).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger("segkit.demo")
PREFIX = "session:"
_TOKEN = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_lock = threading.Lock()
_last_used: dict[str, float] = {}  # token -> time.monotonic() of its last use


class StorageFull(ValueError):
    """A session (or the Space) is out of its disk allowance."""


def root() -> Path:
    return Path(os.environ.get("SEGKIT_SESSION_DIR") or Path(tempfile.gettempdir()) / "segkit-sessions")


def session_bytes() -> int:
    return int(float(os.environ.get("SEGKIT_SESSION_MB", "1000")) * 1024 * 1024)


def total_bytes() -> int:
    return int(float(os.environ.get("SEGKIT_SESSIONS_MB", "10000")) * 1024 * 1024)


def ttl_s() -> float:
    return float(os.environ.get("SEGKIT_SESSION_TTL_S", str(3 * 3600)))


def folder(token: str | None) -> Path:
    """The session's folder (created): `token` when it is live, else a new session. Returns the folder, whose
    name is the token — handlers keep it in gr.State."""
    with _lock:
        new = not (token and _TOKEN.fullmatch(token) and token in _last_used)
        if new:
            token = secrets.token_hex(16)
        _last_used[token] = time.monotonic()
    if new:
        sweep()  # a new visitor is a good moment to drop expired sessions
    path = root() / token
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    from demo.models import forget

    with _lock:
        _last_used.pop(token, None)
    forget(f"{PREFIX}{token}/")  # loaded copies of its models go too, not only the files
    shutil.rmtree(root() / token, ignore_errors=True)
    log.info("session %s… closed, its files removed", token[:6])


def used_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


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
    if not (_TOKEN.fullmatch(token) and _NAME.fullmatch(name)):
        return None
    with _lock:
        if token not in _last_used:
            return None
    return models_dir(root() / token) / name
