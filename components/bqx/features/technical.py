"""Technical indicators of one series (56 features), applied to rate_idx and to the primary BQX series.

On rate_idx the range indicators use the bar's rate_idx high and low as traders define them (and as
TA-Lib computes them): the true range max(H - L, |H - C(t-1)|, |L - C(t-1)|) for ATR and ADX/DI,
directional movement from H(t) - H(t-1) and L(t-1) - L(t), stochastic %K and Williams %R from the
window's highest high and lowest low, CCI on the typical price (H + L + C) / 3. BQX has no intrabar
high and low, so there the same formulas run with H = L = C (``compute(x)``): the true range becomes
|x(t) - x(t-1)|, highs and lows rolling max/min of the series, directional movement the positive and
negative part of the one-row change. Smoothing follows the usual conventions: Wilder (alpha = 1/n) for
RSI, ATR and ADX; EMA (alpha = 2/(n+1)) for MACD, PPO and TRIX; simple means elsewhere.

PPO is (EMA12 - EMA26) / |EMA26| x 100 on rate_idx. BQX crosses zero, where that ratio explodes
(1e4-1e5 was seen), so on BQX ``ppo_12_26`` is bounded: (EMA12 - EMA26) over the standard deviation
of the last ``PPO_SCALE`` values of the series (``compute(x, bounded_ppo=True)``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.rolling import (
    diff,
    ema,
    rolling_max,
    rolling_mean,
    rolling_mean_abs_dev,
    rolling_min,
    rolling_std,
    rolling_sum,
    rows_since_extremes,
    safe_div,
    shift,
    wilder,
)

Block = dict[str, np.ndarray]

EMA_SPANS_MAX = 100
WARMUP = 3 * EMA_SPANS_MAX  # rows for the longest EMA to forget its start (e^-6 weight left)


def rsi(x: np.ndarray, n: int) -> np.ndarray:
    d = diff(x)
    up, down = wilder(np.maximum(d, 0.0), n), wilder(np.maximum(-d, 0.0), n)
    return 100.0 * safe_div(up, up + down)  # = 100 - 100 / (1 + up/down); 100 with no losses


def _macd(x: np.ndarray, fast: int, slow: int, signal: int) -> Block:
    line = ema(x, fast) - ema(x, slow)
    sig = ema(line, signal)
    tag = f"{fast}_{slow}_{signal}"
    return {f"macd_{tag}": line, f"macd_signal_{tag}": sig, f"macd_hist_{tag}": line - sig}


def _stoch(x: np.ndarray, h: np.ndarray, lo_: np.ndarray, n: int) -> Block:
    hi, lo = rolling_max(h, n), rolling_min(lo_, n)
    k = 100.0 * safe_div(x - lo, hi - lo)
    return {f"stoch_k_{n}": k, f"stoch_d_{n}": rolling_mean(k, 3)}


def cci(x: np.ndarray, n: int) -> np.ndarray:
    """Commodity channel index of a (typical price) series; mean absolute deviation in-window."""
    mean, mad = rolling_mean_abs_dev(np.ascontiguousarray(x, dtype=np.float64), n)
    return safe_div(x - mean, 0.015 * mad)


def williams_r(x: np.ndarray, h: np.ndarray, lo_: np.ndarray, n: int) -> np.ndarray:
    hi, lo = rolling_max(h, n), rolling_min(lo_, n)
    return -100.0 * safe_div(hi - x, hi - lo)


def roc(x: np.ndarray, n: int) -> np.ndarray:
    """Rate of change as a difference (BQX crosses zero, so a ratio would explode)."""
    return x - shift(x, n)


def true_range(x: np.ndarray, h: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """max(H - L, |H - C(t-1)|, |L - C(t-1)|); NaN on the first row (no previous close)."""
    prev = shift(x, 1)
    return np.maximum(np.maximum(h - lo, np.abs(h - prev)), np.abs(lo - prev))


def directional_movement(h: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(+DM, -DM): the up move H(t) - H(t-1) when it beats the down move L(t-1) - L(t) and is
    positive, and the other way round; 0 otherwise, NaN on the first row."""
    up, down = diff(h), -diff(lo)
    plus = np.where((up > down) & (up > 0), up, 0.0)
    minus = np.where((down > up) & (down > 0), down, 0.0)
    first = np.isnan(up) | np.isnan(down)
    return np.where(first, np.nan, plus), np.where(first, np.nan, minus)


def atr(x: np.ndarray, h: np.ndarray, lo: np.ndarray, n: int) -> np.ndarray:
    return wilder(true_range(x, h, lo), n)


def _adx(x: np.ndarray, h: np.ndarray, lo: np.ndarray, n: int) -> Block:
    tr = wilder(true_range(x, h, lo), n)
    plus_dm, minus_dm = directional_movement(h, lo)
    plus_di = 100.0 * safe_div(wilder(plus_dm, n), tr)
    minus_di = 100.0 * safe_div(wilder(minus_dm, n), tr)
    dx = 100.0 * safe_div(np.abs(plus_di - minus_di), plus_di + minus_di)
    return {f"adx_{n}": wilder(dx, n), f"plus_di_{n}": plus_di, f"minus_di_{n}": minus_di}


def _aroon(x: np.ndarray, n: int) -> Block:
    """Aroon over n+1 rows: 100 * (n - rows since the window high/low) / n."""
    since_hi, since_lo = rows_since_extremes(np.ascontiguousarray(x, dtype=np.float64), n)
    up, down = 100.0 * (n - since_hi) / n, 100.0 * (n - since_lo) / n
    return {f"aroon_up_{n}": up, f"aroon_down_{n}": down, f"aroon_osc_{n}": up - down}


def trix(x: np.ndarray, n: int) -> np.ndarray:
    e3 = ema(ema(ema(x, n), n), n)
    return diff(e3)


def dpo(x: np.ndarray, n: int) -> np.ndarray:
    """Detrended price oscillator, causal form: x(t) minus the SMA shifted back n/2+1 rows."""
    return x - shift(rolling_mean(x, n), n // 2 + 1)


def cmo(x: np.ndarray, n: int) -> np.ndarray:
    d = diff(x)
    up, down = rolling_sum(np.maximum(d, 0.0), n), rolling_sum(np.maximum(-d, 0.0), n)
    return 100.0 * safe_div(up - down, up + down)


def efficiency_ratio(x: np.ndarray, n: int) -> np.ndarray:
    return safe_div(np.abs(x - shift(x, n)), rolling_sum(np.abs(diff(x)), n))


def _bollinger(x: np.ndarray, n: int) -> Block:
    mid, sd = rolling_mean(x, n), rolling_std(x, n, ddof=0)
    return {f"bb_pctb_{n}": safe_div(x - (mid - 2 * sd), 4 * sd), f"bb_width_{n}": 4 * sd}


def _one(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[..., Block]:
    """A close-only indicator as a spec (high and low unused)."""
    return lambda x, h, lo: {name: fn(x)}


# The indicator list: (feature names, function). Names come from the same entries that compute them.
SPECS: tuple[tuple[tuple[str, ...], Callable[..., Block]], ...] = (  # fn(close, high, low)
    *(((f"rsi_{n}",), _one(f"rsi_{n}", lambda x, n=n: rsi(x, n))) for n in (7, 14, 21, 28)),
    *(((f"macd_{t}", f"macd_signal_{t}", f"macd_hist_{t}"), lambda x, h, lo, a=a, b=b, c=c: _macd(x, a, b, c))
      for a, b, c, t in ((12, 26, 9, "12_26_9"), (5, 35, 5, "5_35_5"))),
    *(((f"stoch_k_{n}", f"stoch_d_{n}"), lambda x, h, lo, n=n: _stoch(x, h, lo, n)) for n in (14, 28, 56)),
    *(((f"cci_{n}",), lambda x, h, lo, n=n: {f"cci_{n}": cci((h + lo + x) / 3.0, n)}) for n in (20, 40)),
    *(((f"willr_{n}",), lambda x, h, lo, n=n: {f"willr_{n}": williams_r(x, h, lo, n)}) for n in (14, 28)),
    *(((f"roc_{n}",), _one(f"roc_{n}", lambda x, n=n: roc(x, n))) for n in (5, 10, 20, 60)),
    *(((f"atr_{n}",), lambda x, h, lo, n=n: {f"atr_{n}": atr(x, h, lo, n)}) for n in (14, 28)),
    *(((f"adx_{n}", f"plus_di_{n}", f"minus_di_{n}"), lambda x, h, lo, n=n: _adx(x, h, lo, n)) for n in (14, 28)),
    *(((f"ema_dist_{n}",), _one(f"ema_dist_{n}", lambda x, n=n: x - ema(x, n))) for n in (10, 20, 50, 100)),
    *(((f"sma_dist_{n}",), _one(f"sma_dist_{n}", lambda x, n=n: x - rolling_mean(x, n))) for n in (10, 20, 50, 100)),
    *(((f"mom_{n}",), _one(f"mom_{n}", lambda x, n=n: diff(x, n))) for n in (10, 30)),
    (("trix_15",), _one("trix_15", lambda x: trix(x, 15))),
    *(((f"zscore_{n}",), _one(f"zscore_{n}", lambda x, n=n: safe_div(x - rolling_mean(x, n), rolling_std(x, n))))
      for n in (20, 60)),
    (("aroon_up_25", "aroon_down_25", "aroon_osc_25"), lambda x, h, lo: _aroon(x, 25)),
    (("dpo_20",), _one("dpo_20", lambda x: dpo(x, 20))),
    (("cmo_14",), _one("cmo_14", lambda x: cmo(x, 14))),
    (("ppo_12_26",), _one("ppo_12_26", lambda x: safe_div(ema(x, 12) - ema(x, 26), np.abs(ema(x, 26))) * 100)),
    (("er_10",), _one("er_10", lambda x: efficiency_ratio(x, 10))),
    (("bb_pctb_20", "bb_width_20"), lambda x, h, lo: _bollinger(x, 20)),
    (("donchian_pos_20",), _one("donchian_pos_20", lambda x: safe_div(x - rolling_min(x, 20),
                                                                      rolling_max(x, 20) - rolling_min(x, 20)))),
    (("ema_slope_20",), _one("ema_slope_20", lambda x: diff(ema(x, 20)))),
)


def names() -> list[str]:
    return [n for spec_names, _ in SPECS for n in spec_names]


PPO_SCALE = EMA_SPANS_MAX  # rows of the standard deviation the bounded PPO divides by


def compute(x: np.ndarray, high: np.ndarray | None = None, low: np.ndarray | None = None,
            bounded_ppo: bool = False) -> Block:
    """Every indicator of close series ``x`` (with its bars' ``high`` and ``low`` when they exist)."""
    h = x if high is None else high
    lo = x if low is None else low
    out: Block = {}
    for spec_names, fn in SPECS:
        block = fn(x, h, lo)
        if tuple(block) != spec_names:
            raise AssertionError(f"technical spec {spec_names} produced {tuple(block)}")
        out.update(block)
    if bounded_ppo:
        out["ppo_12_26"] = safe_div(ema(x, 12) - ema(x, 26), rolling_std(x, PPO_SCALE))
    return out


# --- online: the same indicators at one row (see bqx.features.latest), for the serving engine ---
ONLINE_STATE = 68  # two slots per recursive average, in the order the step below uses them


@njit(cache=True)
def online_step(t: int, x: np.ndarray, h: np.ndarray, lo: np.ndarray, bounded_ppo: float, state: np.ndarray,
                out: np.ndarray) -> int:
    """Row t of every indicator, in :func:`names` order, from the close ``x`` and the bars' high and low
    (the close again on BQX); ``state`` carries the recursive averages. Returns the number of state
    slots used (tests check it fits ``ONLINE_STATE``)."""
    d = lt.diff(x, t, 1)
    up_in, down_in = max(d, 0.0) if np.isfinite(d) else d, max(-d, 0.0) if np.isfinite(d) else d
    if t >= 1:  # true range and directional movement from the bar's high and low
        prev = x[t - 1]
        tr_in = max(max(h[t] - lo[t], abs(h[t] - prev)), abs(lo[t] - prev))
        up_move, down_move = h[t] - h[t - 1], lo[t - 1] - lo[t]
        plus_dm = up_move if (up_move > down_move and up_move > 0) else 0.0
        minus_dm = down_move if (down_move > up_move and down_move > 0) else 0.0
        if np.isnan(up_move) or np.isnan(down_move):
            plus_dm = minus_dm = np.nan
        if np.isnan(h[t]) or np.isnan(lo[t]) or np.isnan(prev):
            tr_in = np.nan
    else:
        tr_in = plus_dm = minus_dm = np.nan
    j = 0
    s = 0
    for n in (7, 14, 21, 28):  # rsi
        up, down = lt.wilder(state, s, up_in, n), lt.wilder(state, s + 2, down_in, n)
        out[j] = 100.0 * lt.sdiv(up, up + down)
        j += 1
        s += 4
    for fast, slow, sig in ((12, 26, 9), (5, 35, 5)):  # macd
        line = lt.ema(state, s, x[t], fast) - lt.ema(state, s + 2, x[t], slow)
        signal = lt.ema(state, s + 4, line, sig)
        out[j], out[j + 1], out[j + 2] = line, signal, line - signal
        j += 3
        s += 6
    for n in (14, 28, 56):  # stoch k and its 3-row mean
        ks = 0.0
        for back in range(3):
            u = t - back
            hi, low = lt.wmax(h, u, n), lt.wmin(lo, u, n)
            k = 100.0 * lt.sdiv(x[u] - low, hi - low) if u >= 0 else np.nan
            if back == 0:
                out[j] = k
            ks += k
        out[j + 1] = ks / 3.0 if t >= 2 else np.nan
        j += 2
    for n in (20, 40):  # cci of the typical price (H + L + C) / 3
        m = np.nan
        if t - n + 1 >= 0:
            m = 0.0
            for i in range(t - n + 1, t + 1):
                m += (h[i] + lo[i] + x[i]) / 3.0
            m /= n
        mad = 0.0
        if np.isfinite(m):
            for i in range(t - n + 1, t + 1):
                mad += abs((h[i] + lo[i] + x[i]) / 3.0 - m)
        tp = (h[t] + lo[t] + x[t]) / 3.0
        out[j] = lt.sdiv(tp - m, 0.015 * mad / n) if np.isfinite(m) else np.nan
        j += 1
    for n in (14, 28):  # williams %R
        hi, low = lt.wmax(h, t, n), lt.wmin(lo, t, n)
        out[j] = -100.0 * lt.sdiv(hi - x[t], hi - low)
        j += 1
    for n in (5, 10, 20, 60):  # roc
        out[j] = lt.diff(x, t, n)
        j += 1
    for n in (14, 28):  # atr
        out[j] = lt.wilder(state, s, tr_in, n)
        j += 1
        s += 2
    for n in (14, 28):  # adx, +DI, -DI
        tr = lt.wilder(state, s, tr_in, n)
        plus = 100.0 * lt.sdiv(lt.wilder(state, s + 2, plus_dm, n), tr)
        minus = 100.0 * lt.sdiv(lt.wilder(state, s + 4, minus_dm, n), tr)
        dx = 100.0 * lt.sdiv(abs(plus - minus), plus + minus)
        out[j], out[j + 1], out[j + 2] = lt.wilder(state, s + 6, dx, n), plus, minus
        j += 3
        s += 8
    for n in (10, 20, 50, 100):  # ema distance
        out[j] = x[t] - lt.ema(state, s, x[t], n)
        j += 1
        s += 2
    for n in (10, 20, 50, 100):  # sma distance
        out[j] = x[t] - lt.wmean(x, t, n)
        j += 1
    for n in (10, 30):  # momentum
        out[j] = lt.diff(x, t, n)
        j += 1
    prev = lt.ewm_value(state, s + 4)  # trix: one-row change of the triple EMA
    e3 = lt.ema(state, s + 4, lt.ema(state, s + 2, lt.ema(state, s, x[t], 15), 15), 15)
    out[j] = e3 - prev
    j += 1
    s += 6
    for n in (20, 60):  # z-score
        out[j] = lt.sdiv(x[t] - lt.wmean(x, t, n), lt.wstd(x, t, n, 1))
        j += 1
    since_hi, since_lo = lt.rows_since_extreme(x, t, 26, True), lt.rows_since_extreme(x, t, 26, False)
    out[j], out[j + 1] = 100.0 * (25 - since_hi) / 25, 100.0 * (25 - since_lo) / 25
    out[j + 2] = out[j] - out[j + 1]
    j += 3
    out[j] = x[t] - (lt.wmean(x, t - 11, 20) if t >= 11 else np.nan)  # dpo_20
    j += 1
    ups = downs = 0.0  # cmo_14
    for i in range(t - 13, t + 1):
        di = lt.diff(x, i, 1) if i >= 0 else np.nan
        ups += max(di, 0.0) if np.isfinite(di) else di
        downs += max(-di, 0.0) if np.isfinite(di) else di
    out[j] = 100.0 * lt.sdiv(ups - downs, ups + downs)
    j += 1
    e12, e26 = lt.ema(state, s, x[t], 12), lt.ema(state, s + 2, x[t], 26)  # ppo_12_26
    if bounded_ppo:
        out[j] = lt.sdiv(e12 - e26, lt.wstd(x, t, PPO_SCALE, 1))
    else:
        out[j] = lt.sdiv(e12 - e26, abs(e26)) * 100.0
    j += 1
    s += 4
    path = 0.0  # er_10
    for i in range(t - 9, t + 1):
        path += abs(lt.diff(x, i, 1)) if i >= 0 else np.nan
    out[j] = lt.sdiv(abs(lt.diff(x, t, 10)), path)
    j += 1
    mid, sd = lt.wmean(x, t, 20), lt.wstd(x, t, 20, 0)  # bollinger 20
    out[j], out[j + 1] = lt.sdiv(x[t] - (mid - 2 * sd), 4 * sd), 4 * sd
    j += 2
    hi, lo = lt.wmax(x, t, 20), lt.wmin(x, t, 20)
    out[j] = lt.sdiv(x[t] - lo, hi - lo)  # donchian position
    j += 1
    prev = lt.ewm_value(state, s)
    out[j] = lt.ema(state, s, x[t], 20) - prev  # ema_slope_20 (NaN until the average has a previous value)
    s += 2
    return s
