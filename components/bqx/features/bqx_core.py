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
from numba import njit

from bqx.config import Settings
from bqx.features import latest as lt
from bqx.features.family import Family, Online
from bqx.features.primary import bqx_point, bqx_series, primary_bqx, primary_warmup
from bqx.features.rolling import rolling_max, rolling_mean, rolling_min, rolling_std, rolling_sum, safe_div, shift

STATS: tuple[str, ...] = ("return", "max", "min", "avg", "stdev", "endpoint")
V1_AGGREGATES: tuple[str, ...] = ("max", "min", "range", "volatility", "momentum", "position", "zscore")
CORE: tuple[str, ...] = ("rate_idx", "idx_ret_1", "bqx_primary_d1")


def names(settings: Settings) -> list[str]:
    window_names = [f"w{w}_bqx_{s}" for w in settings.features.bqx_windows for s in STATS]
    if settings.features.bqx_version == "v1":
        agg = [f"agg_bqx_{a}" for a in V1_AGGREGATES]
    else:
        agg = [f"bqx_{n}" for n in settings.features.bqx_v3_windows]
    return window_names + agg + [f"core_{c}" for c in CORE]


def warmup(settings: Settings) -> int:
    longest = max(*settings.features.bqx_windows, settings.features.bqx_agg_window)
    if settings.features.bqx_version == "v3":
        longest = max(longest, *settings.features.bqx_v3_windows)
    return max(longest, primary_warmup(settings) + 1)


def compute(idx: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """The 40 core BQX features from rate_idx (float64 arrays; the caller stores float32)."""
    out: dict[str, np.ndarray] = {}
    momenta = []
    for w in settings.features.bqx_windows:
        past_sum = shift(rolling_sum(idx, w), 1)
        ret = (past_sum - w * idx) / idx
        momenta.append(ret / w)
        out[f"w{w}_bqx_return"] = ret
        out[f"w{w}_bqx_max"] = (shift(rolling_max(idx, w), 1) - idx) / idx
        out[f"w{w}_bqx_min"] = (shift(rolling_min(idx, w), 1) - idx) / idx
        out[f"w{w}_bqx_avg"] = ret / w
        out[f"w{w}_bqx_stdev"] = shift(rolling_std(idx, w), 1) / idx
        out[f"w{w}_bqx_endpoint"] = (shift(idx, w) - idx) / idx
    if settings.features.bqx_version == "v1":
        a = settings.features.bqx_agg_window
        hi, lo = shift(rolling_max(idx, a), 1), shift(rolling_min(idx, a), 1)
        mean, sd = shift(rolling_mean(idx, a), 1), shift(rolling_std(idx, a), 1)
        out["agg_bqx_max"] = (hi - idx) / idx
        out["agg_bqx_min"] = (lo - idx) / idx
        out["agg_bqx_range"] = (hi - lo) / idx
        out["agg_bqx_volatility"] = sd / idx
        out["agg_bqx_momentum"] = np.mean(momenta, axis=0)
        out["agg_bqx_position"] = safe_div(idx - lo, hi - lo)
        out["agg_bqx_zscore"] = safe_div(idx - mean, sd)
    else:
        for n in settings.features.bqx_v3_windows:
            out[f"bqx_{n}"] = bqx_series(idx, n, "v3")
    primary = primary_bqx(idx, settings)
    out["core_rate_idx"] = idx.copy()
    out["core_idx_ret_1"] = (idx - shift(idx, 1)) / shift(idx, 1)
    out["core_bqx_primary_d1"] = primary - shift(primary, 1)
    return out


# --- online: one row at a time (see bqx.features.latest) ---


def online_params(settings: Settings) -> tuple:
    v3 = np.asarray(settings.features.bqx_v3_windows if settings.features.bqx_version == "v3" else (), dtype=np.int64)
    return (np.asarray(settings.features.bqx_windows, dtype=np.int64), settings.features.bqx_agg_window, v3,
            settings.features.target_window, settings.features.bqx_version == "v1")


@njit(cache=True)
def online_step(t: int, idx: np.ndarray, windows: np.ndarray, agg: int, v3_windows: np.ndarray, target: int,
                v1: bool, state: np.ndarray, out: np.ndarray) -> int:
    """Row t of the core table in :func:`names` order (stateless)."""
    x = idx[t]
    j = 0
    momentum = 0.0
    for w in windows:
        ret = (lt.wsum(idx, t - 1, w) - w * x) / x
        momentum += ret / w
        out[j] = ret
        out[j + 1] = (lt.wmax(idx, t - 1, w) - x) / x
        out[j + 2] = (lt.wmin(idx, t - 1, w) - x) / x
        out[j + 3] = ret / w
        out[j + 4] = lt.wstd(idx, t - 1, w, 1) / x
        out[j + 5] = (lt.lag(idx, t, w) - x) / x
        j += 6
    if v1:
        hi, lo = lt.wmax(idx, t - 1, agg), lt.wmin(idx, t - 1, agg)
        mean, sd = lt.wmean(idx, t - 1, agg), lt.wstd(idx, t - 1, agg, 1)
        out[j] = (hi - x) / x
        out[j + 1] = (lo - x) / x
        out[j + 2] = (hi - lo) / x
        out[j + 3] = sd / x
        out[j + 4] = momentum / len(windows)
        out[j + 5] = lt.sdiv(x - lo, hi - lo)
        out[j + 6] = lt.sdiv(x - mean, sd)
        j += 7
    else:
        for n in v3_windows:
            out[j] = bqx_point(idx, t, n, False)
            j += 1
    prev = lt.lag(idx, t, 1)
    out[j] = x
    out[j + 1] = (x - prev) / prev
    out[j + 2] = bqx_point(idx, t, target, v1) - (bqx_point(idx, t - 1, target, v1) if t >= 1 else np.nan)
    return 0


TABLES: dict[str, Family] = {
    "bqx": Family(names, lambda inp, s: compute(inp.idx, s), warmup,
                  Online(("idx",), online_step, online_params)),
}
