"""``fibonacci_bqx``: Fibonacci retracement levels of the primary BQX series over rolling swings (20).

For W in (60, 240): swing high H and low L over the trailing W values; levels L_r = H - r (H - L) for
r in (0.236, 0.382, 0.5, 0.618, 0.786). Per window: ``fib{r}_dist`` = (x - L_r) / (H - L) for each
level (r as 236, 382, ...), ``position`` = (x - L) / (H - L), ``nearest_level`` = r of the closest
level, ``nearest_dist`` = |x - that level| / (H - L), ``swing_range`` = H - L, ``direction`` = +1 when
the high is more recent than the low (an up-swing being retraced), -1 otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.rolling import rolling_max, rolling_min, safe_div
from bqx.features.windows import window_reduce

WINDOWS: tuple[int, ...] = (60, 240)
RATIOS: tuple[float, ...] = (0.236, 0.382, 0.5, 0.618, 0.786)


def _tag(r: float) -> str:
    return f"{round(r * 1000):03d}"


def names() -> list[str]:
    per = [f"fib{_tag(r)}_dist" for r in RATIOS] + ["position", "nearest_level", "nearest_dist", "swing_range",
                                                    "direction"]
    return [f"w{w}_{f}" for w in WINDOWS for f in per]


def _direction(block: np.ndarray) -> dict[str, np.ndarray]:
    since_hi = np.argmax(block[:, ::-1], axis=1)  # rows since the most recent high
    since_lo = np.argmin(block[:, ::-1], axis=1)
    return {"direction": np.where(since_hi < since_lo, 1.0, -1.0)}


def compute(x: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        hi, lo = rolling_max(x, w), rolling_min(x, w)
        span = hi - lo
        dists = []
        for r in RATIOS:
            d = safe_div(x - (hi - r * span), span)
            out[f"w{w}_fib{_tag(r)}_dist"] = d
            dists.append(d)
        stack = np.abs(np.vstack(dists))
        ok = np.isfinite(stack).all(axis=0)
        nearest = np.argmin(np.where(np.isfinite(stack), stack, np.inf), axis=0)
        out[f"w{w}_position"] = safe_div(x - lo, span)
        out[f"w{w}_nearest_level"] = np.where(ok, np.asarray(RATIOS)[nearest], np.nan)
        out[f"w{w}_nearest_dist"] = np.where(ok, stack[nearest, np.arange(len(x))], np.nan)
        out[f"w{w}_swing_range"] = span
        out[f"w{w}_direction"] = window_reduce(x, w, _direction)["direction"]
    return {k: out[k] for k in names()}


# --- online: one row at a time (see bqx.features.latest) ---

RATIO_ARRAY = np.asarray(RATIOS)


@njit(cache=True)
def online_step(t: int, x: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    j = 0
    for w in WINDOWS:
        hi, lo = lt.wmax(x, t, w), lt.wmin(x, t, w)
        span = hi - lo
        ok = True
        best, nearest = np.inf, 0
        for k in range(len(RATIO_ARRAY)):
            d = lt.sdiv(x[t] - (hi - RATIO_ARRAY[k] * span), span)
            out[j + k] = d
            if np.isnan(d):
                ok = False
            elif abs(d) < best:
                best, nearest = abs(d), k
        j += len(RATIO_ARRAY)
        out[j] = lt.sdiv(x[t] - lo, span)
        out[j + 1] = RATIO_ARRAY[nearest] if ok else np.nan
        out[j + 2] = best if ok else np.nan
        out[j + 3] = span
        since_hi, since_lo = lt.rows_since_extreme(x, t, w, True), lt.rows_since_extreme(x, t, w, False)
        out[j + 4] = np.nan if np.isnan(since_hi) else (1.0 if since_hi < since_lo else -1.0)
        j += 5
    return 0
