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
from numba import njit

from bqx.features import latest as lt
from bqx.features.family import Family, Online
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


# --- online: one row at a time (see bqx.features.latest) ---
SPAN = max(WINDOWS) + 1
ONLINE_STATE = 2  # force13's EMA


@njit(cache=True)
def online_step(t: int, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, state: np.ndarray,
                out: np.ndarray) -> int:
    # the last SPAN rows, newest last: v, tp v, sign(r) v, |r|, up volume, v where r is known,
    # money flow in (tp rising / falling), ease-of-movement term
    s = np.full((9, SPAN), np.nan)
    for k in range(min(SPAN, t + 1)):
        i, col = t - k, SPAN - 1 - k
        tp = (h[i] + lo[i] + c[i]) / 3.0
        r = np.log(c[i] / lt.lag(c, i, 1))
        s[0, col], s[1, col], s[2, col], s[3, col] = v[i], tp * v[i], np.sign(r) * v[i], abs(r)
        s[4, col] = np.nan if np.isnan(r) else (v[i] if r > 0 else 0.0)
        s[5, col] = np.nan if np.isnan(r) else v[i]
        if i >= 1:
            dtp = tp - (h[i - 1] + lo[i - 1] + c[i - 1]) / 3.0
            s[6, col] = np.nan if np.isnan(dtp) else (tp * v[i] if dtp > 0 else 0.0)
            s[7, col] = np.nan if np.isnan(dtp) else (tp * v[i] if dtp < 0 else 0.0)
            dmid = (h[i] + lo[i]) / 2.0 - (h[i - 1] + lo[i - 1]) / 2.0
            s[8, col] = lt.sdiv(dmid * (h[i] - lo[i]), v[i]) / c[i] * 1e4
    last = SPAN - 1
    vol, flow, signed = s[0], s[1], s[2]
    for i, w in enumerate(WINDOWS):
        mean, vsum = lt.wmean(vol, last, w), lt.wsum(vol, last, w)
        vwap = lt.sdiv(lt.wsum(flow, last, w), vsum)
        out[4 * i] = lt.sdiv(v[t], mean)
        out[4 * i + 1] = lt.sdiv(v[t] - mean, lt.wstd(vol, last, w, 1))
        out[4 * i + 2] = lt.sdiv(c[t] - vwap, vwap) * 1e4
        out[4 * i + 3] = lt.sdiv(lt.wsum(signed, last, w), vsum)
    j = 4 * len(WINDOWS)
    out[j] = np.log1p(v[t])
    for k, n in enumerate((15, 60)):
        out[j + 1 + k] = lt.sdiv(lt.wmean(vol, last, n), lt.wmean(vol, last - n, n)) - 1.0
    for k, w in enumerate((60, 240)):
        out[j + 3 + k] = lt.wcorr(s[3], vol, last, w)
    for k, w in enumerate((60, 240)):
        out[j + 5 + k] = lt.sdiv(lt.wsum(s[4], last, w), lt.wsum(s[5], last, w))
    for k, n in enumerate((14, 60)):
        pos, neg = lt.wsum(s[6], last, n), lt.wsum(s[7], last, n)
        out[j + 7 + k] = 100.0 * lt.sdiv(pos, pos + neg)
    r = np.log(c[t] / lt.lag(c, t, 1))
    out[j + 9] = lt.ema(state, 0, r * v[t], 13)
    out[j + 10] = lt.wmean(s[8], last, 14)
    out[j + 11] = lt.sdiv(lt.wstd(vol, last, 60, 1), lt.wmean(vol, last, 60))
    return ONLINE_STATE


TABLES: dict[str, Family] = {
    "volume_features": Family(lambda s: names(),
                              lambda inp, s: compute(inp.high, inp.low, inp.close, inp.volume),
                              lambda s: SPAN,
                              Online(("high", "low", "close", "volume"), online_step,
                                     state_size=lambda s: ONLINE_STATE)),
}
