"""Causal rolling primitives on 1-D float64 arrays.

Every output at row t depends only on rows <= t; rows without a full window are NaN. Window sums are
direct convolutions (``np.convolve``), not running cumulative sums, so each value is the exact sum of
its own window: no drift over long series and no dependence on later rows, even in the last bit.
Leading NaNs (warm-up of an input series) are allowed; NaNs after the first valid row propagate to
every window that contains them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FloatArray = np.ndarray


def first_valid(x: FloatArray) -> int:
    """Index of the first finite value (len(x) if none)."""
    finite = np.flatnonzero(np.isfinite(x))
    return int(finite[0]) if finite.size else len(x)


def window_dot(x: FloatArray, weights: FloatArray) -> FloatArray:
    """out[t] = sum_j weights[j] * x[t - W + 1 + j] for a trailing window of W = len(weights) rows."""
    w = len(weights)
    out = np.full(len(x), np.nan)
    if len(x) >= w:
        out[w - 1:] = np.convolve(x, np.asarray(weights, dtype=np.float64)[::-1], mode="valid")
    return out


def rolling_sum(x: FloatArray, window: int) -> FloatArray:
    return window_dot(x, np.ones(window))


def rolling_mean(x: FloatArray, window: int) -> FloatArray:
    return rolling_sum(x, window) / window


def _anchor(x: FloatArray) -> float:
    """A causal centring constant: the first finite value (0 if none)."""
    i = first_valid(x)
    return float(x[i]) if i < len(x) else 0.0


def rolling_var(x: FloatArray, window: int, ddof: int = 1) -> FloatArray:
    """Rolling variance; the series is shifted by its first value first to keep the sums well conditioned."""
    y = x - _anchor(x)
    s1 = rolling_sum(y, window)
    s2 = rolling_sum(y * y, window)
    var = (s2 - s1 * s1 / window) / (window - ddof)
    return np.maximum(var, 0.0)


def rolling_std(x: FloatArray, window: int, ddof: int = 1) -> FloatArray:
    return np.sqrt(rolling_var(x, window, ddof))


def _suffix_filter(x: FloatArray, window: int, fn: object) -> FloatArray:
    """Apply a scipy min/max filter as a trailing window to the valid suffix of x (O(n), any W)."""
    out = np.full(len(x), np.nan)
    start = first_valid(x)
    seg = x[start:]
    if len(seg) >= window:
        # scipy centres its window; origin (W - 1) // 2 moves it to rows [t - W + 1, t] for odd and even W.
        res = fn(seg, size=window, origin=(window - 1) // 2, mode="nearest")  # type: ignore[operator]
        res[: window - 1] = np.nan
        out[start:] = res
    return out


# scipy is imported where the batch engine uses it: the serving image computes features with the
# online kernels only and is built without scipy.
def rolling_max(x: FloatArray, window: int) -> FloatArray:
    from scipy.ndimage import maximum_filter1d

    return _suffix_filter(x, window, maximum_filter1d)


def rolling_min(x: FloatArray, window: int) -> FloatArray:
    from scipy.ndimage import minimum_filter1d

    return _suffix_filter(x, window, minimum_filter1d)


def ewm(x: FloatArray, alpha: float) -> FloatArray:
    """Recursive exponential average y_t = alpha x_t + (1 - alpha) y_{t-1}, started at the first valid x
    (a NaN after the start propagates, as in the recursion)."""
    out = np.full(len(x), np.nan)
    start = first_valid(x)
    seg = x[start:]
    if len(seg):
        from scipy.signal import lfilter

        zi = np.array([(1 - alpha) * seg[0]])
        out[start:], _ = lfilter([alpha], [1.0, -(1 - alpha)], seg, zi=zi)
    return out


def ema(x: FloatArray, span: int) -> FloatArray:
    return ewm(x, 2.0 / (span + 1))


def wilder(x: FloatArray, period: int) -> FloatArray:
    return ewm(x, 1.0 / period)


def shift(x: FloatArray, k: int) -> FloatArray:
    """x[t - k] (NaN for the first k rows)."""
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def diff(x: FloatArray, k: int = 1) -> FloatArray:
    return x - shift(x, k)


def safe_div(num: FloatArray, den: FloatArray) -> FloatArray:
    """num / den with NaN where den is 0 or not finite (never inf)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(num, den)
    out[~np.isfinite(out)] = np.nan
    return out


def rolling_cov(x: FloatArray, y: FloatArray, window: int) -> FloatArray:
    """Population covariance over trailing windows (each series shifted by its first value first)."""
    xc, yc = x - _anchor(x), y - _anchor(y)
    mx, my = rolling_mean(xc, window), rolling_mean(yc, window)
    return rolling_mean(xc * yc, window) - mx * my


def rolling_corr(x: FloatArray, y: FloatArray, window: int) -> FloatArray:
    """Pearson correlation over trailing windows; NaN where either side is flat."""
    vx = rolling_var(x, window, ddof=0)
    vy = rolling_var(y, window, ddof=0)
    return np.clip(safe_div(rolling_cov(x, y, window), np.sqrt(vx * vy)), -1.0, 1.0)


def rows_since(event: np.ndarray) -> FloatArray:
    """Rows since the event last held (0 on an event row; NaN before the first event)."""
    n = len(event)
    idx = np.arange(n)
    last = np.maximum.accumulate(np.where(event, idx, -1))
    out = (idx - last).astype(np.float64)
    out[last < 0] = np.nan
    return out


@njit(cache=True)
def rolling_mean_abs_dev(x: FloatArray, window: int) -> tuple[FloatArray, FloatArray]:
    """(mean, mean absolute deviation from that mean) over each trailing window, in one pass: the MAD
    needs the window's own mean, so it cannot come from running sums (CCI's denominator)."""
    n = len(x)
    mean, mad = np.full(n, np.nan), np.full(n, np.nan)
    for t in range(window - 1, n):
        s = 0.0
        for k in range(t - window + 1, t + 1):
            s += x[k]
        m = s / window
        d = 0.0
        for k in range(t - window + 1, t + 1):
            d += abs(x[k] - m)
        mean[t], mad[t] = m, d / window
    return mean, mad


@njit(cache=True)
def rows_since_extremes(x: FloatArray, window: int) -> tuple[FloatArray, FloatArray]:
    """Rows since the highest and since the lowest value of the last ``window + 1`` rows (the most
    recent one on ties); NaN where the window holds a non-finite value (Aroon's inputs)."""
    n = len(x)
    since_hi, since_lo = np.full(n, np.nan), np.full(n, np.nan)
    for t in range(window, n):
        hi, lo, at_hi, at_lo, ok = x[t], x[t], t, t, np.isfinite(x[t])
        for k in range(t - 1, t - window - 1, -1):
            v = x[k]
            if not np.isfinite(v):
                ok = False
                break
            if v > hi:
                hi, at_hi = v, k
            if v < lo:
                lo, at_lo = v, k
        if ok:
            since_hi[t], since_lo[t] = t - at_hi, t - at_lo
    return since_hi, since_lo


def fast_rolling_sum(x: FloatArray, window: int) -> FloatArray:
    """Trailing sums by a difference of running sums: O(n) for any window, for series centred near
    zero (returns, changes) where running-sum drift is negligible. A window with any NaN is NaN.
    Still causal bit for bit: the running sum at t only sees rows <= t."""
    out = np.empty(len(x))
    rolling_sum_into(x, window, out)
    return out


@njit(cache=True)
def rolling_sum_into(x: FloatArray, window: int, out: FloatArray) -> None:
    """:func:`fast_rolling_sum` into ``out`` in one compiled pass: the running sum of the finite values
    (in row order, as ``np.cumsum`` adds them) and their count, then each window's difference."""
    n = len(x)
    cs = np.empty(n + 1)
    cnt = np.empty(n + 1, dtype=np.int64)
    cs[0], cnt[0] = 0.0, 0
    for t in range(n):
        v = x[t]
        ok = np.isfinite(v)
        cs[t + 1] = cs[t] + (v if ok else 0.0)
        cnt[t + 1] = cnt[t] + (1 if ok else 0)
    for t in range(n):
        lo = t + 1 - window
        out[t] = cs[t + 1] - cs[lo] if lo >= 0 and cnt[t + 1] - cnt[lo] == window else np.nan


def keep_nan(values: FloatArray, like: FloatArray) -> FloatArray:
    """``values`` where ``like`` is a number, NaN where it is NaN (for flags and masks built from ``like``)."""
    return np.where(np.isnan(like), np.nan, values)


def fast_rolling_corr(x: FloatArray, y: FloatArray, window: int) -> FloatArray:
    """Pearson correlation over trailing windows from running sums (for centred series such as returns)."""
    sx, sy = fast_rolling_sum(x, window), fast_rolling_sum(y, window)
    sxx, syy, sxy = fast_rolling_sum(x * x, window), fast_rolling_sum(y * y, window), fast_rolling_sum(x * y, window)
    cov = sxy - sx * sy / window
    vx, vy = np.maximum(sxx - sx * sx / window, 0.0), np.maximum(syy - sy * sy / window, 0.0)
    return np.clip(safe_div(cov, np.sqrt(vx * vy)), -1.0, 1.0)
