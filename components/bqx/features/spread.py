"""``spread_features``: the cost of trading (6 features).

``spread_bps``: (ask - bid) / mid x 10^4 where the source has quotes, otherwise a high-low proxy, half
the bar's range in bps (an upper bound of the effective spread; ``is_quoted`` says which);
``spread_bps_ma60`` and ``spread_bps_max60`` over 60 rows, ``spread_z60``; ``hl_range_bps`` =
(high - low) / close x 10^4; ``is_quoted`` (1 with bid/ask, 0 on the proxy).
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import Expr, Table, both, compile_table, finite, sdiv, select, series, wmax, wmean, wstd

WINDOW = 60


def table(h: Expr, lo: Expr, c: Expr, bid: Expr, ask: Expr) -> Table:
    hl = (h - lo) / c * 1e4
    quoted = both(finite(bid), finite(ask))
    spread = select(quoted, (ask - bid) / ((bid + ask) / 2.0) * 1e4, hl / 2.0)
    ma = wmean(spread, WINDOW)
    return {"spread_bps": spread, "spread_bps_ma60": ma, "spread_bps_max60": wmax(spread, WINDOW),
            "spread_z60": sdiv(spread - ma, wstd(spread, WINDOW)), "hl_range_bps": hl, "is_quoted": quoted}


TABLES = {"spread_features": from_spec(lambda s: table(series("high"), series("low"), series("close"), series("bid"),
                                                       series("ask")))}


def compute(h: np.ndarray, lo: np.ndarray, c: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("high"), series("low"), series("close"), series("bid"), series("ask"))).batch(
        {"high": h, "low": lo, "close": c, "bid": bid, "ask": ask})
