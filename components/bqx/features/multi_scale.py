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

from functools import cache

import numpy as np
import pandas as pd
from numba import njit

from bqx.features import latest as lt
from bqx.features import reg, technical
from bqx.features.family import Family, Online
from bqx.features.rolling import safe_div
from bqx.features.spec import (
    Expr,
    Kernel,
    Table,
    compile_table,
    ema,
    finite,
    lag,
    log,
    sdiv,
    select,
    series,
    wilder,
    wmax,
    wmean,
    wmin,
    wstd,
)

SCALES: tuple[int, ...] = (30, 60)
LONGEST_WINDOW = 50  # buckets (sma50): the warm-up counts whole windows, EMAs start at the first value
BUCKET_FIELDS: tuple[str, ...] = (
    "ret1", "ret3", "ret6", "range", "body", "rsi14", "macd_hist", "atr14", "zscore20", "stoch14", "bb_pctb20",
    "bb_width20", "ema10_dist", "ema20_dist", "sma50_dist", "roc12", "reg20_lin_norm", "reg20_quad_norm",
    "reg20_r2", "rv", "rv_ratio10", "vol_ratio20", "bqx5", "adx14", "willr14", "cci20",
)
ROW_FIELDS: tuple[str, ...] = ("pos_in_last", "mins_since_close", "ret_since_close", "partial_range")
BUCKET_INPUTS: tuple[str, ...] = ("o", "h", "lo", "c", "v", "rv")  # a bucket's OHLC, volume, realized vol (bps)
MINUTE_NS = 60_000_000_000


def names() -> list[str]:
    return [f"m{m}_{f}" for m in SCALES for f in (*BUCKET_FIELDS, *ROW_FIELDS)]


def warmup() -> int:
    return (LONGEST_WINDOW + 1) * max(SCALES)


def bucket_table(o: Expr, h: Expr, lo: Expr, c: Expr, v: Expr, rv: Expr) -> Table:
    """The features of a series of buckets, one row per bucket (declared once: the batch runs the kernel
    over every bucket, the online step steps it as each bucket completes)."""
    lc, prev = log(c), lag(c, 1)
    tr = select(finite(prev), technical.true_range(c, h, lo), h - lo)  # the first bucket: its own range
    plus_dm, minus_dm = (select(finite(dm), dm, 0.0) for dm in technical.directional_movement(h, lo))
    atr = wilder(tr, 14)
    pdi, mdi = 100.0 * sdiv(wilder(plus_dm, 14), atr), 100.0 * sdiv(wilder(minus_dm, 14), atr)
    macd = ema(c, 12) - ema(c, 26)
    hh, ll = wmax(h, 14), wmin(lo, 14)
    mid, sd = wmean(c, 20), wstd(c, 20, ddof=0)
    fit = reg.fit(c, 20)
    f: Table = {f"ret{k}": (lc - lag(lc, k)) * 1e4 for k in (1, 3, 6)}
    f.update({
        "range": (h - lo) / c * 1e4,
        "body": sdiv(c - o, h - lo),
        "rsi14": technical.rsi(c, 14),
        "macd_hist": (macd - ema(macd, 9)) / c * 1e4,
        "atr14": atr / c * 1e4,
        "zscore20": sdiv(c - wmean(c, 20), wstd(c, 20)),
        "stoch14": 100.0 * sdiv(c - ll, hh - ll),
        "bb_pctb20": sdiv(c - (mid - 2.0 * sd), 4.0 * sd),
        "bb_width20": 4.0 * sd / mid * 1e4,
        "ema10_dist": (c - ema(c, 10)) / ema(c, 10) * 1e4,
        "ema20_dist": (c - ema(c, 20)) / ema(c, 20) * 1e4,
        "sma50_dist": (c - wmean(c, 50)) / wmean(c, 50) * 1e4,
        "roc12": (c / lag(c, 12) - 1.0) * 1e4,
        "reg20_lin_norm": fit["lin_norm"],
        "reg20_quad_norm": fit["quad_norm"],
        "reg20_r2": fit["r2"],
        "rv": rv,
        "rv_ratio10": sdiv(rv, wmean(rv, 10)),
        "vol_ratio20": sdiv(v, wmean(v, 20)),
        "bqx5": (lag(c, 1) + lag(c, 2) + lag(c, 3) + lag(c, 4) + lag(c, 5) - 5.0 * c) / c,
        "adx14": wilder(100.0 * sdiv(abs(pdi - mdi), pdi + mdi), 14),
        "willr14": -100.0 * sdiv(hh - c, hh - ll),
        "cci20": technical.cci((h + lo + c) / 3.0, 20),
    })
    return {k: f[k] for k in BUCKET_FIELDS}


@cache
def bucket_kernel() -> Kernel:
    return compile_table(bucket_table(*(series(k) for k in BUCKET_INPUTS)))


def buckets(ts_ns: np.ndarray, minutes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bucket id of each row, first row of each bucket, one-past-last row, row where it becomes visible)."""
    bucket = ts_ns // (minutes * MINUTE_NS)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts_ns)]
    last = ends - 1
    complete_by_clock = (ts_ns[last] // MINUTE_NS) % minutes == minutes - 1
    visible = np.where(complete_by_clock, last, ends)  # == len(ts) for an unfinished last bucket
    return bucket, starts, ends, visible


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
        feats = bucket_kernel().batch(dict(zip(BUCKET_INPUTS, (bo, bh, bl, bc, bv, brv), strict=True)))
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


# --- online: buckets completed one at a time, each through the bucket kernel ---
# per scale: the current bucket (id, open, high, low, close, volume, sum of r^2, completed by the clock),
# the latest visible bucket's features, its high, low, close and id, then the bucket kernel's state
_CUR = 0
_SEEN = 8
_LAST = _SEEN + len(BUCKET_FIELDS)
_KERNEL = _LAST + 4


def per_scale() -> int:
    return _KERNEL + bucket_kernel().state_size


def online_state(s: object = None) -> int:
    return len(SCALES) * per_scale()


def online_init(state: np.ndarray) -> None:
    state[:] = 0.0
    size = per_scale()
    for i in range(len(SCALES)):
        st = state[i * size:(i + 1) * size]
        st[_CUR] = np.nan  # no bucket yet
        st[_SEEN:_KERNEL] = np.nan
        bucket_kernel().init(st[_KERNEL:])


@njit(cache=True)
def _advance(t: int, ts_ns: np.ndarray, idx_open: np.ndarray, idx_high: np.ndarray, idx_low: np.ndarray,
             idx: np.ndarray, volume: np.ndarray, minutes: int, st: np.ndarray, done: np.ndarray) -> int:
    """Add row t to the current bucket; returns how many buckets completed (0, 1 or 2: the previous one
    when a new bucket starts before the clock closed it, and this one at its last minute), each written
    to a row of ``done`` as (open, high, low, close, volume, rv bps, id)."""
    r2 = np.log(idx[t] / idx[t - 1]) ** 2 if t > 0 else 0.0
    count = 0
    bucket = float(ts_ns[t] // (minutes * MINUTE_NS))
    if st[_CUR] != bucket:  # a new bucket (or the first): the previous one completes now if the clock did not
        if not np.isnan(st[_CUR]) and st[_CUR + 7] == 0.0:
            _close(st, done[count])
            count += 1
        st[_CUR], st[_CUR + 1], st[_CUR + 2], st[_CUR + 3] = bucket, idx_open[t], idx_high[t], idx_low[t]
        st[_CUR + 4], st[_CUR + 5], st[_CUR + 6], st[_CUR + 7] = idx[t], volume[t], r2, 0.0
    else:
        st[_CUR + 2], st[_CUR + 3] = max(st[_CUR + 2], idx_high[t]), min(st[_CUR + 3], idx_low[t])
        st[_CUR + 4], st[_CUR + 5], st[_CUR + 6] = idx[t], st[_CUR + 5] + volume[t], st[_CUR + 6] + r2
    if (ts_ns[t] // MINUTE_NS) % minutes == minutes - 1:  # the clock closes the bucket at its last minute
        _close(st, done[count])
        count += 1
        st[_CUR + 7] = 1.0
    return count


@njit(cache=True)
def _close(st: np.ndarray, row: np.ndarray) -> None:
    row[0], row[1], row[2], row[3], row[4] = st[_CUR + 1], st[_CUR + 2], st[_CUR + 3], st[_CUR + 4], st[_CUR + 5]
    row[5] = np.sqrt(st[_CUR + 6]) * 1e4
    row[6] = st[_CUR]


@njit(cache=True)
def _row(t: int, ts_ns: np.ndarray, idx: np.ndarray, minutes: int, st: np.ndarray, o: np.ndarray) -> None:
    """This row's outputs of one scale: the visible bucket's features and the row-level ones."""
    o[:len(BUCKET_FIELDS)] = st[_SEEN:_LAST]
    hi, lo, close, last_id = st[_LAST], st[_LAST + 1], st[_LAST + 2], st[_LAST + 3]
    j = len(BUCKET_FIELDS)
    o[j] = lt.sdiv(idx[t] - lo, hi - lo)
    o[j + 1] = (ts_ns[t] - (last_id + 1) * minutes * MINUTE_NS) / MINUTE_NS + 1
    o[j + 2] = np.log(idx[t] / close) * 1e4
    o[j + 3] = (st[_CUR + 2] - st[_CUR + 3]) / idx[t] * 1e4


@cache
def _input_order() -> tuple[int, ...]:
    """Where each of the bucket kernel's inputs sits in a completed bucket's row (worked out once)."""
    return tuple(BUCKET_INPUTS.index(name) for name in bucket_kernel().inputs)


def online_step(t: int, ts_ns: np.ndarray, idx_open: np.ndarray, idx_high: np.ndarray, idx_low: np.ndarray,
                idx: np.ndarray, volume: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    kernel, order = bucket_kernel(), _input_order()
    size = per_scale()
    per = len(BUCKET_FIELDS) + len(ROW_FIELDS)
    done = np.empty((2, len(BUCKET_INPUTS) + 1))
    for i, minutes in enumerate(SCALES):
        st = state[i * size:(i + 1) * size]
        for j in range(_advance(t, ts_ns, idx_open, idx_high, idx_low, idx, volume, minutes, st, done)):
            row = done[j]
            kernel.step(0, *(row[k:k + 1] for k in order), st[_KERNEL:], st[_SEEN:_LAST])
            st[_LAST], st[_LAST + 1], st[_LAST + 2], st[_LAST + 3] = row[1], row[2], row[3], row[6]
        _row(t, ts_ns, idx, minutes, st, out[i * per:(i + 1) * per])
    return len(state)


KERNELS = {"multi_scale.buckets": lambda s: bucket_kernel()}  # precompiled with the declared tables

TABLES: dict[str, Family] = {
    "multi_scale": Family(lambda s: names(),
                          lambda inp, s: compute(inp.ts_ns, inp.idx_open, inp.idx_high, inp.idx_low,
                                                             inp.idx, inp.volume),
                          lambda s: warmup(),
                          Online(("ts_ns", "idx_open", "idx_high", "idx_low", "idx", "volume"), online_step,
                                 state_size=online_state, init=online_init)),
}
