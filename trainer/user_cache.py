"""Where segkit keeps what it can recompute: `$SEGKIT_CACHE_DIR/<name>`, else `~/.cache/segkit/<name>`."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache(name: str) -> Path:
    """The folder of one cache (not created here)."""
    return Path(os.environ.get("SEGKIT_CACHE_DIR") or Path.home() / ".cache" / "segkit") / name
