"""``fibonacci_bqx``: Fibonacci retracement levels of the primary BQX series over rolling swings (20).

For W in (60, 240): swing high H and low L over the trailing W values; levels L_r = H - r (H - L) for
r in (0.236, 0.382, 0.5, 0.618, 0.786). Per window: ``fib{r}_dist`` = (x - L_r) / (H - L) for each
level (r as 236, 382, ...), ``position`` = (x - L) / (H - L), ``nearest_level`` = r of the closest
level (the first on ties), ``nearest_dist`` = |x - that level| / (H - L), ``swing_range`` = H - L,
``direction`` = +1 when the high is more recent than the low (an up-swing being retraced), -1 otherwise.
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import (
    Expr,
    Table,
    compile_table,
    eq,
    gt,
    rows_since_max,
    rows_since_min,
    sdiv,
    select,
    series,
    wmax,
    wmin,
)

WINDOWS: tuple[int, ...] = (60, 240)
RATIOS: tuple[float, ...] = (0.236, 0.382, 0.5, 0.618, 0.786)


def _tag(r: float) -> str:
    return f"{round(r * 1000):03d}"


def table(x: Expr) -> Table:
    t: Table = {}
    for w in WINDOWS:
        hi, lo = wmax(x, w), wmin(x, w)
        span = hi - lo
        dists = [sdiv(x - (hi - r * span), span) for r in RATIOS]
        for r, d in zip(RATIOS, dists, strict=True):
            t[f"w{w}_fib{_tag(r)}_dist"] = d
        best = abs(dists[0])
        level = select(eq(best, best), RATIOS[0], 0.0)  # NaN where the distances are
        for r, d in zip(RATIOS[1:], dists[1:], strict=True):
            closer = gt(best, abs(d))
            best, level = select(closer, abs(d), best), select(closer, r, level)
        t[f"w{w}_position"] = sdiv(x - lo, span)
        t[f"w{w}_nearest_level"], t[f"w{w}_nearest_dist"] = level, best
        t[f"w{w}_swing_range"] = span
        t[f"w{w}_direction"] = select(gt(rows_since_min(x, w), rows_since_max(x, w)), 1.0, -1.0)
    return t


TABLES = {"fibonacci_bqx": from_spec(lambda s: table(series("bqx")))}


def compute(x: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("bqx"))).batch({"bqx": x})
