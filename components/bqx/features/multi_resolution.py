"""``multi_resolution_idx``: returns and ranges of rate_idx at several resolutions (30 features).

For k in (1, 5, 15, 30, 60, 120, 240, 480, 960, 1440) rows: ``ret{k}`` = ln(idx_t / idx_{t-k}) x 10^4,
``range{k}`` = (max high - min low over the last k bars) / idx_t x 10^4 and ``pos{k}`` = where the close
sits in that range, 0 (low) to 1 (high).
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import Expr, Table, compile_table, lag, log, sdiv, series, wmax, wmin

HORIZONS: tuple[int, ...] = (1, 5, 15, 30, 60, 120, 240, 480, 960, 1440)


def table(idx: Expr, high: Expr, low: Expr) -> Table:
    t: Table = {}
    for k in HORIZONS:
        hi, lo = wmax(high, k), wmin(low, k)
        t[f"ret{k}"] = log(idx / lag(idx, k)) * 1e4
        t[f"range{k}"] = (hi - lo) / idx * 1e4
        t[f"pos{k}"] = sdiv(idx - lo, hi - lo)
    return t


TABLES = {"multi_resolution_idx": from_spec(lambda s: table(series("idx"), series("idx_high"), series("idx_low")))}


def compute(idx: np.ndarray, idx_high: np.ndarray, idx_low: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("idx"), series("idx_high"), series("idx_low"))).batch(
        {"idx": idx, "idx_high": idx_high, "idx_low": idx_low})
