"""``multi_scale``: features of 30- and 60-minute bars, aligned causally (60 features).

1-minute rate_idx bars are grouped into clock buckets of M minutes (M in 30, 60). A bucket's features
become visible at its final minute's bar when that bar exists (the clock says the bucket is
complete), otherwise at the first bar of the next bucket; each row carries the latest visible
bucket's values. Nothing of an unfinished bucket leaks in, except the last four row-level features,
which use the current row and the part of the current bucket already seen.

Per scale, prefix ``m{M}_`` (bps = 10^4 x relative): ``ret1 ret3 ret6`` (log returns over 1/3/6
buckets, bps), ``range`` (H-L)/C bps, ``body`` (C-O)/(H-L), ``rsi14``, ``macd_hist`` (12/26/9, bps of C),
``atr14`` (Wilder true range, bps), ``zscore20``, ``stoch14``, ``bb_pctb20``, ``bb_width20`` (bps),
``ema10_dist ema20_dist sma50_dist`` (bps), ``roc12`` (bps), ``reg20_lin_norm reg20_quad_norm reg20_r2``
(REG fit over 20 buckets), ``rv`` (sqrt of summed squared 1-minute log returns, bps), ``rv_ratio10``,
``vol_ratio20``, ``bqx5`` (v1 BQX of bucket closes over 5 buckets), ``adx14`` (from highs and lows),
``willr14``, ``cci20``; row-level: ``pos_in_last`` (row close in the last bucket's range),
``mins_since_close``, ``ret_since_close`` (bps) and ``partial_range`` (bps range of the current bucket so far).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bqx.features import reg, technical
from bqx.features.rolling import ema, rolling_max, rolling_mean, rolling_min, rolling_std, safe_div, shift, wilder

SCALES: tuple[int, ...] = (30, 60)
LONGEST_WINDOW = 50  # buckets (sma50): the warm-up counts whole windows, EMAs start at the first value
BUCKET_FIELDS: tuple[str, ...] = (
    "ret1", "ret3", "ret6", "range", "body", "rsi14", "macd_hist", "atr14", "zscore20", "stoch14", "bb_pctb20",
    "bb_width20", "ema10_dist", "ema20_dist", "sma50_dist", "roc12", "reg20_lin_norm", "reg20_quad_norm",
    "reg20_r2", "rv", "rv_ratio10", "vol_ratio20", "bqx5", "adx14", "willr14", "cci20",
)
ROW_FIELDS: tuple[str, ...] = ("pos_in_last", "mins_since_close", "ret_since_close", "partial_range")
MINUTE_NS = 60_000_000_000


def names() -> list[str]:
    return [f"m{m}_{f}" for m in SCALES for f in (*BUCKET_FIELDS, *ROW_FIELDS)]


def warmup() -> int:
    return (LONGEST_WINDOW + 1) * max(SCALES)


def buckets(ts_ns: np.ndarray, minutes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bucket id of each row, first row of each bucket, one-past-last row, row where it becomes visible)."""
    bucket = ts_ns // (minutes * MINUTE_NS)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts_ns)]
    last = ends - 1
    complete_by_clock = (ts_ns[last] // MINUTE_NS) % minutes == minutes - 1
    visible = np.where(complete_by_clock, last, ends)  # == len(ts) for an unfinished last bucket
    return bucket, starts, ends, visible


def _adx(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    up, down = h - shift(h, 1), shift(lo, 1) - lo
    plus = np.where((up > down) & (up > 0), up, 0.0)
    minus = np.where((down > up) & (down > 0), down, 0.0)
    tr = np.fmax(h - lo, np.fmax(np.abs(h - shift(c, 1)), np.abs(lo - shift(c, 1))))
    atr = wilder(tr, n)
    pdi, mdi = 100 * safe_div(wilder(plus, n), atr), 100 * safe_div(wilder(minus, n), atr)
    return wilder(100 * safe_div(np.abs(pdi - mdi), pdi + mdi), n)


def bucket_features(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray,
                    rv: np.ndarray) -> dict[str, np.ndarray]:
    """The per-bucket features from bucket OHLC, volume and realized volatility."""
    f: dict[str, np.ndarray] = {}
    lc = np.log(c)
    for k in (1, 3, 6):
        f[f"ret{k}"] = (lc - shift(lc, k)) * 1e4
    f["range"] = (h - lo) / c * 1e4
    f["body"] = safe_div(c - o, h - lo)
    f["rsi14"] = technical.rsi(c, 14)
    macd = ema(c, 12) - ema(c, 26)
    f["macd_hist"] = (macd - ema(macd, 9)) / c * 1e4
    tr = np.fmax(h - lo, np.fmax(np.abs(h - shift(c, 1)), np.abs(lo - shift(c, 1))))
    f["atr14"] = wilder(tr, 14) / c * 1e4
    f["zscore20"] = safe_div(c - rolling_mean(c, 20), rolling_std(c, 20))
    hh, ll = rolling_max(h, 14), rolling_min(lo, 14)
    f["stoch14"] = 100 * safe_div(c - ll, hh - ll)
    mid, sd = rolling_mean(c, 20), rolling_std(c, 20, ddof=0)
    f["bb_pctb20"] = safe_div(c - (mid - 2 * sd), 4 * sd)
    f["bb_width20"] = 4 * sd / mid * 1e4
    for n in (10, 20):
        e = ema(c, n)
        f[f"ema{n}_dist"] = (c - e) / e * 1e4
    sma = rolling_mean(c, 50)
    f["sma50_dist"] = (c - sma) / sma * 1e4
    f["roc12"] = (c / shift(c, 12) - 1) * 1e4
    fit = reg.fit_window(c, 20)
    f["reg20_lin_norm"], f["reg20_quad_norm"], f["reg20_r2"] = fit["lin_norm"], fit["quad_norm"], fit["r2"]
    f["rv"] = rv
    f["rv_ratio10"] = safe_div(rv, rolling_mean(rv, 10))
    f["vol_ratio20"] = safe_div(v, rolling_mean(v, 20))
    past = sum(shift(c, i) for i in range(1, 6))
    f["bqx5"] = (past - 5 * c) / c
    f["adx14"] = _adx(h, lo, c, 14)
    f["willr14"] = -100 * safe_div(hh - c, hh - ll)
    tp = (h + lo + c) / 3
    f["cci20"] = technical.cci(tp, 20)
    return {k: f[k] for k in BUCKET_FIELDS}


def compute(ts_ns: np.ndarray, idx_open: np.ndarray, idx_high: np.ndarray, idx_low: np.ndarray, idx: np.ndarray,
            volume: np.ndarray) -> dict[str, np.ndarray]:
    n = len(idx)
    r2 = np.zeros(n)
    r2[1:] = np.log(idx[1:] / idx[:-1]) ** 2
    out: dict[str, np.ndarray] = {}
    for m in SCALES:
        bucket, starts, ends, visible = buckets(ts_ns, m)
        bo = idx_open[starts]
        bh = np.maximum.reduceat(idx_high, starts)
        bl = np.minimum.reduceat(idx_low, starts)
        bc = idx[ends - 1]
        bv = np.add.reduceat(volume, starts)
        brv = np.sqrt(np.add.reduceat(r2, starts)) * 1e4
        feats = bucket_features(bo, bh, bl, bc, bv, brv)
        k = np.searchsorted(visible, np.arange(n), side="right") - 1  # latest bucket visible at each row
        seen = k >= 0
        kk = np.where(seen, k, 0)
        for name, values in feats.items():
            out[f"m{m}_{name}"] = np.where(seen, values[kk], np.nan)
        last_end_ns = (bucket[ends[kk] - 1] + 1) * m * MINUTE_NS
        out[f"m{m}_pos_in_last"] = np.where(seen, safe_div(idx - bl[kk], bh[kk] - bl[kk]), np.nan)
        out[f"m{m}_mins_since_close"] = np.where(seen, (ts_ns - last_end_ns) / MINUTE_NS + 1, np.nan)
        out[f"m{m}_ret_since_close"] = np.where(seen, np.log(idx / bc[kk]) * 1e4, np.nan)
        part_hi = pd.Series(idx_high).groupby(bucket).cummax().to_numpy()
        part_lo = pd.Series(idx_low).groupby(bucket).cummin().to_numpy()
        out[f"m{m}_partial_range"] = (part_hi - part_lo) / idx * 1e4
    return {k: out[k] for k in names()}
