"""glibc's malloc set for a training step: large tensors go back to the system, the rest are reused.

glibc serves an allocation above its mmap threshold with its own mapping, unmapped when freed; below it, from the
heap, whose free top it trims back to the system past the trim threshold. Left alone, the threshold rises with every
large block freed, up to 32 MiB, and the heap never shrinks: 0.85 GiB kept but unused in the video cache's 1024-px
figure (bench/README.md, issue 26). Every block unmapped or trimmed is page-faulted in again, zero-filled, by the
next step, though: with a 1 MiB threshold (the setting before) a 256-px video step spent 30 s of 60 in the kernel.

So the threshold follows the step's scale, as its tensors do: 1 MiB at 1024 px, (1024 / size)² MiB below (16 MiB at
256 px), at most glibc's 32 MiB; the heap keeps 16 thresholds free at its top and grows 4 at a time. A 1024-px step
keeps what issue 26 measured; a 256-px step's tensors are reused (bench/bench_malloc.py: the quickstart's video run
1.46x, semantic 1.22x, SAM2 1.04x, detectron2 1.05x as fast, the same weights to the byte). The engine's loop and
detectron2's worker call it on a CPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt's parameter numbers (malloc.h)
MIB = 1 << 20
GLIBC_MAX_THRESHOLD = 32 * MIB


def mmap_threshold(image_size: int) -> int:
    """Bytes from which an allocation gets its own mapping, for a step at `image_size` px."""
    return int(min(GLIBC_MAX_THRESHOLD, max(MIB, MIB * (1024 / image_size) ** 2)))


def tune_malloc(image_size: int) -> bool:
    """Set glibc's malloc for steps at `image_size` px (module docstring); False where it is not glibc (no-op).
    Setting the thresholds also stops glibc moving them."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.gnu_get_libc_version  # glibc's own: another C library's mallopt takes other parameter numbers
    except (OSError, TypeError, AttributeError):
        return False
    threshold = mmap_threshold(image_size)
    settings = ((M_MMAP_THRESHOLD, threshold), (M_TRIM_THRESHOLD, 16 * threshold), (M_TOP_PAD, 4 * threshold))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
