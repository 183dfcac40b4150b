"""Host memory that training frees goes back to the system.

glibc serves an allocation above its mmap threshold with its own mapping, unmapped when freed; below it, from the
heap, which keeps what is freed. The threshold starts at 128 KiB and rises with every large block freed, up to
32 MiB, so after a few steps a 1024-px step's activations (a few MiB to 32 MiB each) and the feature cache's
evicted views all come from the heap, and the process's resident memory grows by what that heap keeps but no
longer uses: 0.85 GiB in the video cache's 1024-px figure (bench/README.md). A fixed threshold of 1 MiB keeps
large tensors in their own mappings.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h); setting it also stops the threshold's rise
LARGE_BYTES = 1 << 20


def return_large_frees() -> bool:
    """Serve allocations of LARGE_BYTES and more from their own mappings from now on (glibc only; elsewhere a no-op,
    False)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(M_MMAP_THRESHOLD, LARGE_BYTES))
    except OSError:
        return False
