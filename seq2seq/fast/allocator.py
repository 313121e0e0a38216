"""Keep freed heap memory in the process for reuse (glibc), instead of handing it back to the OS.

By default glibc serves every allocation above its mmap threshold (at most 32 MiB) with a
fresh ``mmap`` and unmaps it on free. A training step allocates and frees buffers of that
size every batch (the logits alone are target tokens x vocabulary floats), so every batch
pays to fault in and zero those pages again: on a 2-core machine that was about a sixth
of training time. With mmap off and trimming raised, freed blocks stay in the heap and
the next batch reuses them. Peak memory is about the same (the peak batch's buffers are
resident once either way); it is just not returned between batches.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_MAX = -4
TRIM_ABOVE = 1 << 30  # still hand back a free top of heap above 1 GiB


def reuse_freed_memory() -> bool:
    """Tune this process's allocator as described above; True if it applied (glibc on Linux),
    False elsewhere (other allocators need no help or take none)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE))
