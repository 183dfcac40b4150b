"""trainer.quiet: known third-party warnings are gone from a real trainer run's stderr; ours still show."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from data_factories import truncate, write_coco
from trainer import quiet

ROOT = Path(__file__).resolve().parents[1]
# What each known warning prints (before the filter existed, every Detectron2 run printed all of these).
THIRD_PARTY = ["`torch.jit.script` is deprecated", "pkg_resources is deprecated", "torch.meshgrid: in an upcoming",
               "is_fx_tracing will return true", "NumPy array is not writable"]


def test_filter_needs_both_message_and_module():
    quiet.install()
    known = next(k for k in quiet.KNOWN if k.category is UserWarning)  # pytest's config ignores FutureWarning
    message = known.message
    with warnings.catch_warnings(record=True) as caught:  # keeps the installed filters
        warnings.warn_explicit(message, UserWarning, "x.py", 1, module=known.module)
        warnings.warn_explicit(message, UserWarning, "loop.py", 1, module="trainer.engine.loop")
        warnings.warn_explicit("step 3: non-finite loss/gradient (nan); update skipped", UserWarning, "loop.py", 1,
                               module="trainer.engine.loop")
    assert [str(w.message) for w in caught] == [message, "step 3: non-finite loss/gradient (nan); update skipped"]
    assert all(":" not in k.message and "," not in k.message for k in quiet.KNOWN)  # PYTHONWARNINGS-safe


@pytest.mark.timeout(300)
def test_detectron2_run_stderr_has_only_our_warnings(tmp_path):
    """A real CLI run in its own interpreter, on data with a corrupt image and --skip-bad."""
    from test_d2_helpers import SIZE, TINY_OPTS

    data = write_coco(tmp_path, n_images=4, size=SIZE)
    truncate(data / "images" / "img_3.png")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "detectron2", "--data", str(data), "--skip-bad", "--out",
         str(tmp_path / "run"), "--no-pretrained", "--depth", "18", "--min-size", str(SIZE), "--max-size", str(SIZE),
         "--steps", "1", "--roi-batch", "32", "--loader-workers", "1", "--device", "cpu", "--precision", "fp32",
         "--no-progress", "--overlays", "0", "--opts", *TINY_OPTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for text in THIRD_PARTY:
        assert text not in proc.stderr, text
    assert "img_3.png: corrupt or truncated image" in proc.stderr  # our own warning, --skip-bad's report
    assert "Warning" not in proc.stderr, proc.stderr  # nothing else slipped through either
