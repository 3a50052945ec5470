"""``bollinger_bqx``: Bollinger bands of the primary BQX series (20 features).

For W in (20, 30, 60, 120): middle = SMA_W, sd = population stdev over W (the Bollinger convention),
``bb{W}_upper`` / ``bb{W}_lower`` = middle +/- 2 sd, ``bb{W}_width`` = upper - lower (BQX crosses zero,
so widths are absolute, not relative), ``bb{W}_pctb`` = (x - lower) / (upper - lower),
``bb{W}_slope`` = middle(t) - middle(t-1).
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import Expr, Table, compile_table, diff, sdiv, series, wmean, wstd

WINDOWS: tuple[int, ...] = (20, 30, 60, 120)
K = 2.0


def table(x: Expr) -> Table:
    t: Table = {}
    for w in WINDOWS:
        mid, sd = wmean(x, w), wstd(x, w, ddof=0)
        upper, lower = mid + K * sd, mid - K * sd
        t[f"bb{w}_upper"], t[f"bb{w}_lower"], t[f"bb{w}_width"] = upper, lower, upper - lower
        t[f"bb{w}_pctb"] = sdiv(x - lower, upper - lower)
        t[f"bb{w}_slope"] = diff(mid)
    return t


TABLES = {"bollinger_bqx": from_spec(lambda s: table(series("bqx")))}


def compute(x: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("bqx"))).batch({"bqx": x})
