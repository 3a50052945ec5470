"""``moving_avg_idx``: SMA/EMA distances and slopes of rate_idx (24 features).

For each window W in (5, 15, 30, 60, 120, 240): ``sma{W}_dist`` = (idx - SMA) / SMA x 100,
``ema{W}_dist`` likewise with the EMA (alpha = 2/(W+1)), and the one-row slopes of both averages in
percent: ``sma{W}_slope`` = (SMA(t) / SMA(t-1) - 1) x 100, ``ema{W}_slope``. (technical_idx keeps
absolute distances at 10/20/50/100; these are relative, at other windows.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.rolling import ema, rolling_mean, shift

WINDOWS: tuple[int, ...] = (5, 15, 30, 60, 120, 240)
WARMUP = 3 * max(WINDOWS)


def names() -> list[str]:
    return [f"{kind}{w}_{what}" for w in WINDOWS for kind in ("sma", "ema") for what in ("dist", "slope")]


def compute(idx: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        for kind, avg in (("sma", rolling_mean(idx, w)), ("ema", ema(idx, w))):
            out[f"{kind}{w}_dist"] = (idx - avg) / avg * 100.0
            out[f"{kind}{w}_slope"] = (avg / shift(avg, 1) - 1.0) * 100.0
    return out


# --- online: one row at a time (see bqx.features.latest) ---

ONLINE_STATE = 2 * len(WINDOWS)


@njit(cache=True)
def online_step(t: int, idx: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    x = idx[t]
    for i, w in enumerate(WINDOWS):
        sma, sma_prev = lt.wmean(idx, t, w), lt.wmean(idx, t - 1, w)
        ema_prev = lt.ewm_value(state, 2 * i)
        e = lt.ema(state, 2 * i, x, w)
        out[4 * i] = (x - sma) / sma * 100.0
        out[4 * i + 1] = (sma / sma_prev - 1.0) * 100.0
        out[4 * i + 2] = (x - e) / e * 100.0
        out[4 * i + 3] = (e / ema_prev - 1.0) * 100.0
    return ONLINE_STATE
