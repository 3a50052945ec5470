"""How a stage process asks glibc's allocator to keep freed memory for reuse.

By default glibc hands blocks above a moving threshold (128 KB at first) to the kernel with mmap and
returns them on free, and trims the top of its heap whenever more than twice that threshold is free.
Numpy's temporaries of a feature table (a few MB each) are then faulted in fresh and zeroed by the
kernel again and again: on a VM, where first touch of a page is slow, that is most of the difference
between a table's first and second computation (bench/features.py). Fixing the thresholds keeps
blocks up to :data:`MMAP_THRESHOLD` on the heap and the heap's free memory in the process, so a
stage's peak is reached once and then reused. Without glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 2**30  # free memory at the heap's top kept before trimming


@functools.cache
def keep_freed_memory() -> bool:
    """Set the thresholds once per process; True when glibc accepted them."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
