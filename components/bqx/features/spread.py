"""``spread_features``: the cost of trading (6 features).

``spread_bps``: (ask - bid) / mid x 10^4 where the source has quotes, otherwise a high-low proxy, half
the bar's range in bps (an upper bound of the effective spread; ``is_quoted`` says which);
``spread_bps_ma60`` and ``spread_bps_max60`` over 60 rows, ``spread_z60``; ``hl_range_bps`` =
(high - low) / close x 10^4; ``is_quoted`` (1 with bid/ask, 0 on the proxy).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.family import Family, Online
from bqx.features.rolling import rolling_max, rolling_mean, rolling_std, safe_div

NAMES: tuple[str, ...] = ("spread_bps", "spread_bps_ma60", "spread_bps_max60", "spread_z60", "hl_range_bps",
                          "is_quoted")


def names() -> list[str]:
    return list(NAMES)


def compute(h: np.ndarray, lo: np.ndarray, c: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> dict[str, np.ndarray]:
    hl = (h - lo) / c * 1e4
    quoted = np.isfinite(bid) & np.isfinite(ask)
    mid = (bid + ask) / 2
    spread = np.where(quoted, (ask - bid) / np.where(quoted, mid, 1.0) * 1e4, hl / 2)
    ma = rolling_mean(spread, 60)
    return {
        "spread_bps": spread, "spread_bps_ma60": ma, "spread_bps_max60": rolling_max(spread, 60),
        "spread_z60": safe_div(spread - ma, rolling_std(spread, 60)), "hl_range_bps": hl,
        "is_quoted": quoted.astype(np.float64),
    }


# --- online: one row at a time (see bqx.features.latest) ---

WINDOW = 60


@njit(cache=True)
def _spread_at(h: np.ndarray, lo: np.ndarray, c: np.ndarray, bid: np.ndarray, ask: np.ndarray, i: int) -> float:
    if np.isfinite(bid[i]) and np.isfinite(ask[i]):
        return (ask[i] - bid[i]) / ((bid[i] + ask[i]) / 2) * 1e4
    return (h[i] - lo[i]) / c[i] * 1e4 / 2


@njit(cache=True)
def online_step(t: int, h: np.ndarray, lo: np.ndarray, c: np.ndarray, bid: np.ndarray, ask: np.ndarray,
                state: np.ndarray, out: np.ndarray) -> int:
    recent = np.full(WINDOW, np.nan)
    for k in range(min(WINDOW, t + 1)):
        recent[WINDOW - 1 - k] = _spread_at(h, lo, c, bid, ask, t - k)
    last = WINDOW - 1
    ma, sd, mx = lt.wmean(recent, last, WINDOW), lt.wstd(recent, last, WINDOW, 1), lt.wmax(recent, last, WINDOW)
    out[0] = recent[last]
    out[1] = ma
    out[2] = mx
    out[3] = lt.sdiv(recent[last] - ma, sd)
    out[4] = (h[t] - lo[t]) / c[t] * 1e4
    out[5] = 1.0 if (np.isfinite(bid[t]) and np.isfinite(ask[t])) else 0.0
    return 0


TABLES: dict[str, Family] = {
    "spread_features": Family(lambda s: names(),
                              lambda inp, s: compute(inp.high, inp.low, inp.close, inp.bid, inp.ask),
                              lambda s: WINDOW,
                              Online(("high", "low", "close", "bid", "ask"), online_step)),
}
