"""Point primitives for the online kernels: the value at one row ``t`` from rows ``<= t`` only.

Each mirrors a batch primitive of :mod:`bqx.features.rolling` at a single row, compiled with numba so
a family's online ``step`` (one call per new bar) costs microseconds instead of one numpy pass per
feature. Conventions match the batch ones: a window that starts before row 0 or holds a NaN is NaN;
``sdiv`` is NaN where the quotient is not finite; recursive averages start at their first finite
input and carry a NaN forever once one arrives after the start (as the recursion does).

Recursive state lives in a float64 vector owned by the caller: an average uses two slots (started,
value); rows since an event is :func:`bqx.features.incremental.since`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NAN = np.nan


@njit(cache=True)
def lag(x: np.ndarray, t: int, k: int) -> float:
    """x[t - k] (NaN before row 0)."""
    return x[t - k] if t - k >= 0 else NAN


@njit(cache=True)
def diff(x: np.ndarray, t: int, k: int) -> float:
    return x[t] - lag(x, t, k)


@njit(cache=True)
def sdiv(a: float, b: float) -> float:
    if b == 0.0:
        return NAN
    q = a / b
    return q if np.isfinite(q) else NAN


@njit(cache=True)
def wsum(x: np.ndarray, t: int, w: int) -> float:
    if t - w + 1 < 0:
        return NAN
    s = 0.0
    for i in range(t - w + 1, t + 1):
        s += x[i]
    return s


@njit(cache=True)
def wmean(x: np.ndarray, t: int, w: int) -> float:
    return wsum(x, t, w) / w


@njit(cache=True)
def wvar(x: np.ndarray, t: int, w: int, ddof: int) -> float:
    """Two-pass variance of the trailing window (ddof 0 or 1)."""
    m = wmean(x, t, w)
    if not np.isfinite(m):
        return NAN
    s = 0.0
    for i in range(t - w + 1, t + 1):
        d = x[i] - m
        s += d * d
    return s / (w - ddof)


@njit(cache=True)
def wstd(x: np.ndarray, t: int, w: int, ddof: int) -> float:
    return np.sqrt(wvar(x, t, w, ddof))


@njit(cache=True)
def wmax(x: np.ndarray, t: int, w: int) -> float:
    if t - w + 1 < 0:
        return NAN
    m = -np.inf
    for i in range(t - w + 1, t + 1):
        v = x[i]
        if np.isnan(v):
            return NAN
        if v > m:
            m = v
    return m


@njit(cache=True)
def wmin(x: np.ndarray, t: int, w: int) -> float:
    if t - w + 1 < 0:
        return NAN
    m = np.inf
    for i in range(t - w + 1, t + 1):
        v = x[i]
        if np.isnan(v):
            return NAN
        if v < m:
            m = v
    return m


@njit(cache=True)
def wcov(x: np.ndarray, y: np.ndarray, t: int, w: int, ddof: int) -> float:
    mx, my = wmean(x, t, w), wmean(y, t, w)
    if not (np.isfinite(mx) and np.isfinite(my)):
        return NAN
    s = 0.0
    for i in range(t - w + 1, t + 1):
        s += (x[i] - mx) * (y[i] - my)
    return s / (w - ddof)


@njit(cache=True)
def comoment(sxy: float, sx: float, sy: float, w: int) -> float:
    """sum (x - mean x)(y - mean y) over a window of w rows, from its sums (the running-sum tables' form)."""
    return sxy - sx * sy / w


@njit(cache=True)
def clip_corr(cov: float, vx: float, vy: float) -> float:
    """cov / sqrt(vx vy) clipped to [-1, 1]; NaN where either side is flat."""
    c = sdiv(cov, np.sqrt(vx * vy))
    return min(max(c, -1.0), 1.0) if np.isfinite(c) else NAN


@njit(cache=True)
def wcorr(x: np.ndarray, y: np.ndarray, t: int, w: int) -> float:
    """Pearson correlation over the trailing window, clipped to [-1, 1]; NaN where either side is flat."""
    return clip_corr(wcov(x, y, t, w, 0), wvar(x, t, w, 0), wvar(y, t, w, 0))


@njit(cache=True)
def rows_since_extreme(x: np.ndarray, t: int, w: int, highest: bool) -> float:
    """Rows back from t to the most recent max (or min) of the trailing window; NaN with a NaN inside."""
    if t - w + 1 < 0:
        return NAN
    best = x[t]
    at = 0
    for k in range(w):
        v = x[t - k]
        if np.isnan(v):
            return NAN
        if (highest and v > best) or (not highest and v < best):
            best = v
            at = k
    return float(at)


@njit(cache=True)
def ewm(state: np.ndarray, slot: int, x: float, alpha: float) -> float:
    """Advance the recursive average in state[slot:slot + 2] by one input and return it."""
    if state[slot] == 0.0:
        if np.isnan(x):
            return NAN
        state[slot] = 1.0
        state[slot + 1] = x
        return x
    y = alpha * x + (1.0 - alpha) * state[slot + 1]
    state[slot + 1] = y
    return y


@njit(cache=True)
def ema(state: np.ndarray, slot: int, x: float, span: int) -> float:
    return ewm(state, slot, x, 2.0 / (span + 1))


@njit(cache=True)
def wilder(state: np.ndarray, slot: int, x: float, period: int) -> float:
    return ewm(state, slot, x, 1.0 / period)


@njit(cache=True)
def ewm_value(state: np.ndarray, slot: int) -> float:
    """The average's current value (NaN before it starts)."""
    return state[slot + 1] if state[slot] == 1.0 else NAN
