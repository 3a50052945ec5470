"""``moving_avg_idx``: SMA/EMA distances and slopes of rate_idx (24 features).

For each window W in (5, 15, 30, 60, 120, 240): ``sma{W}_dist`` = (idx - SMA) / SMA x 100,
``ema{W}_dist`` likewise with the EMA (alpha = 2/(W+1)), and the one-row slopes of both averages in
percent: ``sma{W}_slope`` = (SMA(t) / SMA(t-1) - 1) x 100, ``ema{W}_slope``. (technical_idx keeps
absolute distances at 10/20/50/100; these are relative, at other windows.)
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import Expr, Table, compile_table, ema, lag, series, wmean

WINDOWS: tuple[int, ...] = (5, 15, 30, 60, 120, 240)


def table(x: Expr) -> Table:
    t: Table = {}
    for w in WINDOWS:
        for kind, avg in (("sma", wmean(x, w)), ("ema", ema(x, w))):
            t[f"{kind}{w}_dist"] = (x - avg) / avg * 100.0
            t[f"{kind}{w}_slope"] = (avg / lag(avg, 1) - 1.0) * 100.0
    return t


TABLES = {"moving_avg_idx": from_spec(lambda s: table(series("idx")))}


def compute(idx: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("idx"))).batch({"idx": idx})
