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

from bqx.features.rolling import (
    diff,
    ema,
    keep_nan,
    rolling_corr,
    rolling_mean,
    rolling_std,
    rolling_sum,
    safe_div,
    shift,
)

WINDOWS: tuple[int, ...] = (15, 30, 60, 120, 240)


def names() -> list[str]:
    out = [f"{f}{w}" for w in WINDOWS for f in ("vol_ratio", "vol_z", "vwap_dist", "obv_slope")]
    out += ["volume_log", "vol_roc15", "vol_roc60", "pv_corr60", "pv_corr240", "up_volume_share60",
            "up_volume_share240", "mfi14", "mfi60", "force13", "eom14", "vol_cv60"]
    return out


def _mfi(tp: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    flow = tp * v
    d = diff(tp)
    pos = rolling_sum(keep_nan(np.where(d > 0, flow, 0.0), d), n)
    neg = rolling_sum(keep_nan(np.where(d < 0, flow, 0.0), d), n)
    return 100.0 * safe_div(pos, pos + neg)


def compute(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    tp = (h + lo + c) / 3.0
    r = np.log(c / shift(c, 1))
    signed = np.sign(r) * v
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        mean = rolling_mean(v, w)
        vsum = rolling_sum(v, w)
        vwap = safe_div(rolling_sum(tp * v, w), vsum)
        out[f"vol_ratio{w}"] = safe_div(v, mean)
        out[f"vol_z{w}"] = safe_div(v - mean, rolling_std(v, w))
        out[f"vwap_dist{w}"] = safe_div(c - vwap, vwap) * 1e4
        out[f"obv_slope{w}"] = safe_div(rolling_sum(signed, w), vsum)
    out["volume_log"] = np.log1p(v)
    for k in (15, 60):
        m = rolling_mean(v, k)
        out[f"vol_roc{k}"] = safe_div(m, shift(m, k)) - 1.0
    for w in (60, 240):
        out[f"pv_corr{w}"] = rolling_corr(np.abs(r), v, w)
    for w in (60, 240):
        up = keep_nan(np.where(r > 0, v, 0.0), r)
        out[f"up_volume_share{w}"] = safe_div(rolling_sum(up, w), rolling_sum(keep_nan(v, r), w))
    out["mfi14"], out["mfi60"] = _mfi(tp, v, 14), _mfi(tp, v, 60)
    out["force13"] = ema(r * v, 13)
    mid = (h + lo) / 2.0
    out["eom14"] = rolling_mean(safe_div(diff(mid) * (h - lo), v) / c * 1e4, 14)
    out["vol_cv60"] = safe_div(rolling_std(v, 60), rolling_mean(v, 60))
    return {k: out[k] for k in names()}
