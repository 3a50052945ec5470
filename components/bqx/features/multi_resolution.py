"""``multi_resolution_idx``: returns and ranges of rate_idx at several resolutions (30 features).

For k in (1, 5, 15, 30, 60, 120, 240, 480, 960, 1440) rows: ``ret{k}`` = ln(idx_t / idx_{t-k}) x 10^4,
``range{k}`` = (max high - min low over the last k bars) / idx_t x 10^4 and ``pos{k}`` = where the close
sits in that range, 0 (low) to 1 (high).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.family import Family, Online
from bqx.features.rolling import rolling_max, rolling_min, safe_div, shift

HORIZONS: tuple[int, ...] = (1, 5, 15, 30, 60, 120, 240, 480, 960, 1440)


def names() -> list[str]:
    return [f"{f}{k}" for k in HORIZONS for f in ("ret", "range", "pos")]


def compute(idx: np.ndarray, idx_high: np.ndarray, idx_low: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k in HORIZONS:
        hi, lo = rolling_max(idx_high, k), rolling_min(idx_low, k)
        out[f"ret{k}"] = np.log(idx / shift(idx, k)) * 1e4
        out[f"range{k}"] = (hi - lo) / idx * 1e4
        out[f"pos{k}"] = safe_div(idx - lo, hi - lo)
    return out


# --- online: one row at a time (see bqx.features.latest) ---


@njit(cache=True)
def online_step(t: int, idx: np.ndarray, idx_high: np.ndarray, idx_low: np.ndarray, state: np.ndarray,
                out: np.ndarray) -> int:
    for i, k in enumerate(HORIZONS):
        hi, lo = lt.wmax(idx_high, t, k), lt.wmin(idx_low, t, k)
        out[3 * i] = np.log(idx[t] / lt.lag(idx, t, k)) * 1e4
        out[3 * i + 1] = (hi - lo) / idx[t] * 1e4
        out[3 * i + 2] = lt.sdiv(idx[t] - lo, hi - lo)
    return 0


TABLES: dict[str, Family] = {
    "multi_resolution_idx": Family(lambda s: names(),
                                   lambda inp, s: compute(inp.idx, inp.idx_high, inp.idx_low),
                                   lambda s: max(HORIZONS),
                                   Online(("idx", "idx_high", "idx_low"), online_step)),
}
