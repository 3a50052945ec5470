"""The ``bqx_{pair}`` core table of the BQX series (:mod:`bqx.features.primary`).

The core table (40 features) holds, for each v1 window W in ``bqx_windows``, six statistics of the
backward deviations ``d_i = (idx(t-i) - idx(t)) / idx(t)``, i = 1..W: ``return`` (sum), ``max``,
``min``, ``avg`` (= return / W), ``stdev`` (of idx(t-W..t-1), over idx(t)) and ``endpoint`` (d_W);
seven aggregates (v1: over ``bqx_agg_window`` rows; v3: ``bqx_N`` for the seven v3 windows); and three
core values: rate_idx, its one-row return and the one-row change of the primary BQX series (the
series models predict: ``bqx_{target_window}`` under the configured version).
"""

from __future__ import annotations

import numpy as np

from bqx.config import Settings
from bqx.features.family import from_spec
from bqx.features.primary import primary_bqx
from bqx.features.spec import Expr, Table, compile_table, diff, lag, sdiv, series, wmax, wmean, wmin, wstd, wsum

STATS: tuple[str, ...] = ("return", "max", "min", "avg", "stdev", "endpoint")
V1_AGGREGATES: tuple[str, ...] = ("max", "min", "range", "volatility", "momentum", "position", "zscore")
CORE: tuple[str, ...] = ("rate_idx", "idx_ret_1", "bqx_primary_d1")


def table(idx: Expr, primary: Expr, settings: Settings) -> Table:
    """The core table of rate_idx ``idx`` and the primary BQX series ``primary``."""
    f = settings.features
    past = lag(idx, 1)  # the backward window is idx(t-W..t-1)
    t: Table = {}
    momenta = []
    for w in f.bqx_windows:
        ret = (wsum(past, w) - w * idx) / idx
        momenta.append(ret / float(w))
        t[f"w{w}_bqx_return"] = ret
        t[f"w{w}_bqx_max"] = (wmax(past, w) - idx) / idx
        t[f"w{w}_bqx_min"] = (wmin(past, w) - idx) / idx
        t[f"w{w}_bqx_avg"] = ret / float(w)
        t[f"w{w}_bqx_stdev"] = wstd(past, w) / idx
        t[f"w{w}_bqx_endpoint"] = (lag(idx, w) - idx) / idx
    if f.bqx_version == "v1":
        a = f.bqx_agg_window
        hi, lo, mean, sd = wmax(past, a), wmin(past, a), wmean(past, a), wstd(past, a)
        t["agg_bqx_max"], t["agg_bqx_min"], t["agg_bqx_range"] = (hi - idx) / idx, (lo - idx) / idx, (hi - lo) / idx
        t["agg_bqx_volatility"] = sd / idx
        t["agg_bqx_momentum"] = sum(momenta[1:], momenta[0]) / float(len(momenta))
        t["agg_bqx_position"] = sdiv(idx - lo, hi - lo)
        t["agg_bqx_zscore"] = sdiv(idx - mean, sd)
    else:
        for n in f.bqx_v3_windows:
            t[f"bqx_{n}"] = (idx - lag(idx, n)) / lag(idx, n) * 100.0
    t["core_rate_idx"] = idx
    t["core_idx_ret_1"] = (idx - past) / past
    t["core_bqx_primary_d1"] = diff(primary)
    return t


TABLES = {"bqx": from_spec(lambda s: table(series("idx"), series("bqx"), s))}


def names(settings: Settings) -> list[str]:
    return list(table(series("idx"), series("bqx"), settings))


def compute(idx: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """The 40 core BQX features from rate_idx (float64 arrays; the caller stores float32)."""
    return compile_table(table(series("idx"), series("bqx"), settings)).batch(
        {"idx": idx, "bqx": primary_bqx(idx, settings)})
