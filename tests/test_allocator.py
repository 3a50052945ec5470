"""A stage process keeps freed memory for reuse instead of faulting fresh pages in for every temporary."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource
import numpy as np
from bqx.allocator import keep_freed_memory

assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a, b = np.ones(2**20), np.ones(3 * 2**18)  # 8 MB and 6 MB: above glibc's default mmap threshold
del a, b
before = faults()
for _ in range(20):
    a, b = np.ones(2**20), np.ones(3 * 2**18)
    del a, b
print(faults() - before)
"""


def test_freed_blocks_are_reused_without_page_faults() -> None:
    # 280 MB allocated in all: without the thresholds this faults in ~1,000 pages or more; with them none
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) < 50, out.stdout
