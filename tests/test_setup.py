"""The environment setup.sh made: pip finds no conflict, and every pinned version is the one installed."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pip_check_is_clean():
    """detectron2's stale iopath<0.1.10 pin (sam2 needs >=0.1.10) is gone from its metadata, nothing else clashes."""
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _pins() -> dict[str, str]:
    pins = {}
    for name in ("requirements-stack.txt", "requirements.txt"):
        for line in (ROOT / name).read_text().splitlines():
            match = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line.split("#")[0].strip())
            if match:
                pins[match.group(1)] = match.group(3)
    pins["sam2"] = re.search(r"^SAM2=sam2==(\S+)", (ROOT / "setup.sh").read_text(), re.M).group(1)
    return pins


def test_installed_versions_are_the_pinned_ones():
    """One list of versions (the requirement files + setup.sh) for .venv and the Space's image alike."""
    pins = _pins()
    assert len(pins) > 30
    wrong = {name: (want, metadata.version(name)) for name, want in pins.items()
             if metadata.version(name).split("+")[0] != want}
    assert not wrong, wrong
