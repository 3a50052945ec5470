"""``moving_avg_idx``: SMA/EMA distances and slopes of rate_idx (24 features).

For each window W in (5, 15, 30, 60, 120, 240): ``sma{W}_dist`` = (idx - SMA) / SMA x 100,
``ema{W}_dist`` likewise with the EMA (alpha = 2/(W+1)), and the one-row slopes of both averages in
percent: ``sma{W}_slope`` = (SMA(t) / SMA(t-1) - 1) x 100, ``ema{W}_slope``. (technical_idx keeps
absolute distances at 10/20/50/100; these are relative, at other windows.)
"""

from __future__ import annotations

import numpy as np

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
