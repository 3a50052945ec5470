"""``bollinger_bqx``: Bollinger bands of the primary BQX series (20 features).

For W in (20, 30, 60, 120): middle = SMA_W, sd = population stdev over W (the Bollinger convention),
``bb{W}_upper`` / ``bb{W}_lower`` = middle +/- 2 sd, ``bb{W}_width`` = upper - lower (BQX crosses zero,
so widths are absolute, not relative), ``bb{W}_pctb`` = (x - lower) / (upper - lower),
``bb{W}_slope`` = middle(t) - middle(t-1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.rolling import diff, rolling_mean, rolling_std, safe_div

WINDOWS: tuple[int, ...] = (20, 30, 60, 120)
K = 2.0


def names() -> list[str]:
    return [f"bb{w}_{f}" for w in WINDOWS for f in ("upper", "lower", "width", "pctb", "slope")]


def compute(x: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        mid, sd = rolling_mean(x, w), rolling_std(x, w, ddof=0)
        upper, lower = mid + K * sd, mid - K * sd
        out[f"bb{w}_upper"] = upper
        out[f"bb{w}_lower"] = lower
        out[f"bb{w}_width"] = upper - lower
        out[f"bb{w}_pctb"] = safe_div(x - lower, upper - lower)
        out[f"bb{w}_slope"] = diff(mid)
    return out


# --- online: one row at a time (see bqx.features.latest) ---


@njit(cache=True)
def online_step(t: int, x: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    for i, w in enumerate(WINDOWS):
        mid, sd = lt.wmean(x, t, w), lt.wstd(x, t, w, 0)
        upper, lower = mid + K * sd, mid - K * sd
        out[5 * i] = upper
        out[5 * i + 1] = lower
        out[5 * i + 2] = upper - lower
        out[5 * i + 3] = lt.sdiv(x[t] - lower, upper - lower)
        out[5 * i + 4] = mid - lt.wmean(x, t - 1, w)
    return 0
