"""``volume_features``: volume / tick-count features (32). NaN-safe: without volume every value is NaN.

tp = (H + L + C) / 3, r = ln(C_t / C_{t-1}). For W in (15, 30, 60, 120, 240): ``vol_ratio{W}`` v / mean,
``vol_z{W}``, ``vwap_dist{W}`` = (C - VWAP) / VWAP x 10^4 with VWAP = sum(tp v) / sum(v),
``obv_slope{W}`` = sum(sign(r) v) / sum(v) (on-balance volume change over the window, normalised).
Also ``volume_log`` = ln(1 + v); ``vol_roc{k}`` (k = 15, 60) = mean_k(v) / mean_k(v) k rows earlier - 1;
``pv_corr{W}`` (W = 60, 240) correlation of |r| and v; ``up_volume_share{W}`` (60, 240) volume on rising
bars / volume; ``mfi{n}`` (14, 60) the money flow index; ``force13`` EMA_13 of r v; ``eom14`` ease of
movement SMA_14 of (mid_t - mid_{t-1}) (H - L) / v with mid = (H + L) / 2, in bps of C; ``vol_cv60``
stdev / mean of v over 60.
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import (
    Expr,
    Table,
    compile_table,
    diff,
    ema,
    gt,
    keep_nan,
    lag,
    log,
    log1p,
    sdiv,
    select,
    series,
    sign,
    wcorr,
    wmean,
    wstd,
    wsum,
)

WINDOWS: tuple[int, ...] = (15, 30, 60, 120, 240)


def _mfi(tp: Expr, v: Expr, n: int) -> Expr:
    flow, d = tp * v, diff(tp)
    pos, neg = wsum(select(gt(d, 0.0), flow, 0.0), n), wsum(select(gt(0.0, d), flow, 0.0), n)
    return 100.0 * sdiv(pos, pos + neg)


def table(h: Expr, lo: Expr, c: Expr, v: Expr) -> Table:
    tp = (h + lo + c) / 3.0
    r = log(c / lag(c, 1))
    t: Table = {}
    for w in WINDOWS:
        mean, vsum = wmean(v, w), wsum(v, w)
        vwap = sdiv(wsum(tp * v, w), vsum)
        t[f"vol_ratio{w}"] = sdiv(v, mean)
        t[f"vol_z{w}"] = sdiv(v - mean, wstd(v, w))
        t[f"vwap_dist{w}"] = sdiv(c - vwap, vwap) * 1e4
        t[f"obv_slope{w}"] = sdiv(wsum(sign(r) * v, w), vsum)
    t["volume_log"] = log1p(v)
    for k in (15, 60):
        t[f"vol_roc{k}"] = sdiv(wmean(v, k), lag(wmean(v, k), k)) - 1.0
    for w in (60, 240):
        t[f"pv_corr{w}"] = wcorr(abs(r), v, w)
    for w in (60, 240):
        t[f"up_volume_share{w}"] = sdiv(wsum(select(gt(r, 0.0), v, 0.0), w), wsum(keep_nan(v, r), w))
    t["mfi14"], t["mfi60"] = _mfi(tp, v, 14), _mfi(tp, v, 60)
    t["force13"] = ema(r * v, 13)
    t["eom14"] = wmean(sdiv(diff((h + lo) / 2.0) * (h - lo), v) / c * 1e4, 14)
    t["vol_cv60"] = sdiv(wstd(v, 60), wmean(v, 60))
    return t


TABLES = {"volume_features": from_spec(lambda s: table(series("high"), series("low"), series("close"),
                                                       series("volume")))}


def compute(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("high"), series("low"), series("close"), series("volume"))).batch(
        {"high": h, "low": lo, "close": c, "volume": v})
