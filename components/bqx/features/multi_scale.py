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
from numba import njit

from bqx.features import latest as lt
from bqx.features import reg, technical
from bqx.features.family import Family, Online
from bqx.features.rolling import ema, rolling_max, rolling_mean, rolling_min, rolling_std, safe_div, shift, wilder
from bqx.features.spec import compile_table, series

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
    osc = compile_table({"rsi14": technical.rsi(series("c"), 14),
                         "cci20": technical.cci((series("h") + series("lo") + series("c")) / 3.0, 20)}
                        ).batch({"c": c, "h": h, "lo": lo})
    f["rsi14"] = osc["rsi14"]
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
    f["cci20"] = osc["cci20"]
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


# --- online: buckets completed one at a time (see bqx.features.latest) ---
RING = 64  # completed buckets kept (the longest window is LONGEST_WINDOW)
_CUR = 0  # current bucket: id, open, high, low, close, volume, sum of r^2, already completed by the clock
_BUCKETS = 8  # ring of completed buckets: open, high, low, close, volume, rv, id (RING each)
_COUNT = _BUCKETS + 7 * RING  # completed buckets
_EMA = _COUNT + 1  # recursive averages over buckets, 2 slots each
_N_EMA = 12
_SEEN = _EMA + 2 * _N_EMA  # the latest visible bucket: its features, then high, low, close, id
PER_SCALE = _SEEN + len(BUCKET_FIELDS) + 4
ONLINE_STATE = len(SCALES) * PER_SCALE


def online_init(state: np.ndarray) -> None:
    state[:] = 0.0
    for i in range(len(SCALES)):
        state[i * PER_SCALE + _CUR] = np.nan  # no bucket yet
        state[i * PER_SCALE + _SEEN: (i + 1) * PER_SCALE] = np.nan


@njit(cache=True)
def _fmax(a: float, b: float) -> float:
    if np.isnan(a):
        return b
    if np.isnan(b):
        return a
    return max(a, b)


@njit(cache=True)
def _complete(st: np.ndarray) -> None:
    """Close the current bucket: push it to the ring and compute its features (as bucket_features)."""
    count = int(st[_COUNT])
    slot = count % RING
    for f in range(6):  # open high low close volume rv
        value = st[_CUR + 1 + f] if f < 5 else np.sqrt(st[_CUR + 6]) * 1e4
        st[_BUCKETS + f * RING + slot] = value
    st[_BUCKETS + 6 * RING + slot] = st[_CUR]
    st[_COUNT] = count + 1
    # the completed buckets in order, oldest first, NaN where there were none yet
    b = np.full((6, RING), np.nan)
    for back in range(min(count + 1, RING)):
        for f in range(6):
            b[f, RING - 1 - back] = st[_BUCKETS + f * RING + (count - back) % RING]
    o, h, lo, c, v, rv = b[0], b[1], b[2], b[3], b[4], b[5]
    t = RING - 1
    e = _EMA
    out = st[_SEEN:_SEEN + len(BUCKET_FIELDS)]
    lc = np.log(c)
    for k, n in enumerate((1, 3, 6)):
        out[k] = (lc[t] - lt.lag(lc, t, n)) * 1e4
    out[3] = (h[t] - lo[t]) / c[t] * 1e4
    out[4] = lt.sdiv(c[t] - o[t], h[t] - lo[t])
    d = lt.diff(c, t, 1)
    up = lt.wilder(st, e, max(d, 0.0) if np.isfinite(d) else d, 14)
    down = lt.wilder(st, e + 2, max(-d, 0.0) if np.isfinite(d) else d, 14)
    out[5] = 100.0 * lt.sdiv(up, up + down)
    macd = lt.ema(st, e + 4, c[t], 12) - lt.ema(st, e + 6, c[t], 26)
    out[6] = (macd - lt.ema(st, e + 8, macd, 9)) / c[t] * 1e4
    prev_c = lt.lag(c, t, 1)
    tr = _fmax(h[t] - lo[t], _fmax(abs(h[t] - prev_c), abs(lo[t] - prev_c)))
    out[7] = lt.wilder(st, e + 10, tr, 14) / c[t] * 1e4
    out[8] = lt.sdiv(c[t] - lt.wmean(c, t, 20), lt.wstd(c, t, 20, 1))
    hh, ll = lt.wmax(h, t, 14), lt.wmin(lo, t, 14)
    out[9] = 100.0 * lt.sdiv(c[t] - ll, hh - ll)
    mid, sd = lt.wmean(c, t, 20), lt.wstd(c, t, 20, 0)
    out[10] = lt.sdiv(c[t] - (mid - 2 * sd), 4 * sd)
    out[11] = 4 * sd / mid * 1e4
    for k, n in enumerate((10, 20)):
        avg = lt.ema(st, e + 12 + 2 * k, c[t], n)
        out[12 + k] = (c[t] - avg) / avg * 1e4
    sma = lt.wmean(c, t, 50)
    out[14] = (c[t] - sma) / sma * 1e4
    out[15] = (c[t] / lt.lag(c, t, 12) - 1) * 1e4
    fit = np.empty(12)
    reg.fit_at(c, t, 20, fit, 0)
    out[16], out[17], out[18] = fit[9], fit[8], fit[5]  # lin_norm, quad_norm, r2
    out[19] = rv[t]
    out[20] = lt.sdiv(rv[t], lt.wmean(rv, t, 10))
    out[21] = lt.sdiv(v[t], lt.wmean(v, t, 20))
    past = 0.0
    for i in range(1, 6):
        past += lt.lag(c, t, i)
    out[22] = (past - 5 * c[t]) / c[t]
    up_move, down_move = h[t] - lt.lag(h, t, 1), lt.lag(lo, t, 1) - lo[t]
    plus = up_move if (up_move > down_move and up_move > 0) else 0.0
    minus = down_move if (down_move > up_move and down_move > 0) else 0.0
    atr = lt.wilder(st, e + 16, tr, 14)
    pdi = 100 * lt.sdiv(lt.wilder(st, e + 18, plus, 14), atr)
    mdi = 100 * lt.sdiv(lt.wilder(st, e + 20, minus, 14), atr)
    out[23] = lt.wilder(st, e + 22, 100 * lt.sdiv(abs(pdi - mdi), pdi + mdi), 14)
    out[24] = -100 * lt.sdiv(hh - c[t], hh - ll)
    tp = (h + lo + c) / 3
    m = lt.wmean(tp, t, 20)
    mad = 0.0
    for i in range(t - 19, t + 1):
        mad += abs(tp[i] - m)
    out[25] = lt.sdiv(tp[t] - m, 0.015 * mad / 20)
    seen = _SEEN + len(BUCKET_FIELDS)
    st[seen], st[seen + 1], st[seen + 2], st[seen + 3] = h[t], lo[t], c[t], st[_CUR]


@njit(cache=True)
def online_step(t: int, ts_ns: np.ndarray, idx_open: np.ndarray, idx_high: np.ndarray, idx_low: np.ndarray,
                idx: np.ndarray, volume: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    r2 = np.log(idx[t] / idx[t - 1]) ** 2 if t > 0 else 0.0
    per = len(BUCKET_FIELDS) + len(ROW_FIELDS)
    for i in range(len(SCALES)):
        minutes = SCALES[i]
        st = state[i * PER_SCALE:(i + 1) * PER_SCALE]
        bucket = float(ts_ns[t] // (minutes * MINUTE_NS))
        if st[_CUR] != bucket:  # a new bucket (or the first): the previous one completes now if the clock did not
            if not np.isnan(st[_CUR]) and st[_CUR + 7] == 0.0:
                _complete(st)
            st[_CUR], st[_CUR + 1], st[_CUR + 2], st[_CUR + 3] = bucket, idx_open[t], idx_high[t], idx_low[t]
            st[_CUR + 4], st[_CUR + 5], st[_CUR + 6], st[_CUR + 7] = idx[t], volume[t], r2, 0.0
        else:
            st[_CUR + 2], st[_CUR + 3] = max(st[_CUR + 2], idx_high[t]), min(st[_CUR + 3], idx_low[t])
            st[_CUR + 4], st[_CUR + 5], st[_CUR + 6] = idx[t], st[_CUR + 5] + volume[t], st[_CUR + 6] + r2
        if (ts_ns[t] // MINUTE_NS) % minutes == minutes - 1:  # the clock closes the bucket at its last minute
            _complete(st)
            st[_CUR + 7] = 1.0
        o = out[i * per:(i + 1) * per]
        seen = _SEEN + len(BUCKET_FIELDS)
        o[:len(BUCKET_FIELDS)] = st[_SEEN:seen]
        hi, lo, close, last_id = st[seen], st[seen + 1], st[seen + 2], st[seen + 3]
        j = len(BUCKET_FIELDS)
        o[j] = lt.sdiv(idx[t] - lo, hi - lo)
        o[j + 1] = (ts_ns[t] - (last_id + 1) * minutes * MINUTE_NS) / MINUTE_NS + 1
        o[j + 2] = np.log(idx[t] / close) * 1e4
        o[j + 3] = (st[_CUR + 2] - st[_CUR + 3]) / idx[t] * 1e4
    return ONLINE_STATE


TABLES: dict[str, Family] = {
    "multi_scale": Family(lambda s: names(),
                          lambda inp, s: compute(inp.ts_ns, inp.idx_open, inp.idx_high, inp.idx_low,
                                                             inp.idx, inp.volume),
                          lambda s: warmup(),
                          Online(("ts_ns", "idx_open", "idx_high", "idx_low", "idx", "volume"), online_step,
                                 state_size=lambda s: ONLINE_STATE, init=online_init)),
}
