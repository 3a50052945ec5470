"""Chunked trailing-window reductions for statistics no running sum gives (percentiles, entropy,
argmax, central moments). Each window is reduced on its own, so values are exact and causal; rows
are processed in chunks of about ``chunk_values`` values: small enough (512 KB of float64) that each
intermediate array stays in cache and is reused by the allocator instead of being faulted in fresh
(32 MB chunks made the FFT features twice as slow, bench/features.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bqx.features.rolling import first_valid

Reducer = Callable[[np.ndarray], dict[str, np.ndarray]]


def window_reduce(x: np.ndarray, window: int, reducer: Reducer, chunk_values: int = 65_536) -> dict[str, np.ndarray]:
    """Apply ``reducer`` to (rows, window) blocks of trailing windows over the valid suffix of ``x``.

    ``reducer`` returns named 1-D arrays, one value per window; rows without a full window are NaN.
    """
    start = first_valid(x)
    seg = x[start:]
    out: dict[str, np.ndarray] = {}
    n = len(x)
    if len(seg) < window:
        probe = reducer(np.zeros((1, window)))
        return {k: np.full(n, np.nan) for k in probe}
    view = sliding_window_view(seg, window)
    rows = max(1, chunk_values // window)
    for lo in range(0, len(view), rows):
        block = reducer(view[lo:lo + rows])
        for name, vals in block.items():
            if name not in out:
                out[name] = np.full(n, np.nan)
            first = start + window - 1 + lo
            out[name][first:first + len(vals)] = vals
    return out
