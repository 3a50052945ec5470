"""Technical indicators of one series (56 features), applied to rate_idx and to the primary BQX series.

BQX has no intrabar high/low, so every indicator uses the close-only form on both domains, which
keeps ``technical_idx`` and ``technical_bqx`` the same indicators: the true range is |x(t) - x(t-1)|,
highs and lows are rolling max/min of the series, and directional movement is the positive and
negative part of the one-row change. Smoothing follows the usual conventions: Wilder (alpha = 1/n) for
RSI, ATR and ADX; EMA (alpha = 2/(n+1)) for MACD, PPO and TRIX; simple means elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bqx.features.rolling import (
    diff,
    ema,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
    rolling_sum,
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


def _stoch(x: np.ndarray, n: int) -> Block:
    hi, lo = rolling_max(x, n), rolling_min(x, n)
    k = 100.0 * safe_div(x - lo, hi - lo)
    return {f"stoch_k_{n}": k, f"stoch_d_{n}": rolling_mean(k, 3)}


def cci(x: np.ndarray, n: int) -> np.ndarray:
    """Commodity channel index with the close as typical price; mean absolute deviation in-window."""
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.full(len(x), np.nan)
    if len(x) >= n:
        win = sliding_window_view(x, n)
        mean = win.mean(axis=1)
        mad = np.abs(win - mean[:, None]).mean(axis=1)
        out[n - 1:] = safe_div(x[n - 1:] - mean, 0.015 * mad)
    return out


def williams_r(x: np.ndarray, n: int) -> np.ndarray:
    hi, lo = rolling_max(x, n), rolling_min(x, n)
    return -100.0 * safe_div(hi - x, hi - lo)


def roc(x: np.ndarray, n: int) -> np.ndarray:
    """Rate of change as a difference (BQX crosses zero, so a ratio would explode)."""
    return x - shift(x, n)


def atr(x: np.ndarray, n: int) -> np.ndarray:
    return wilder(np.abs(diff(x)), n)


def _adx(x: np.ndarray, n: int) -> Block:
    d = diff(x)
    tr = wilder(np.abs(d), n)
    plus_di = 100.0 * safe_div(wilder(np.maximum(d, 0.0), n), tr)
    minus_di = 100.0 * safe_div(wilder(np.maximum(-d, 0.0), n), tr)
    dx = 100.0 * safe_div(np.abs(plus_di - minus_di), plus_di + minus_di)
    return {f"adx_{n}": wilder(dx, n), f"plus_di_{n}": plus_di, f"minus_di_{n}": minus_di}


def _aroon(x: np.ndarray, n: int) -> Block:
    """Aroon over n+1 rows: 100 * (n - rows since the window high/low) / n."""
    from numpy.lib.stride_tricks import sliding_window_view

    up = np.full(len(x), np.nan)
    down = np.full(len(x), np.nan)
    if len(x) > n:
        win = sliding_window_view(x, n + 1)
        ok = np.isfinite(win).all(axis=1)
        # argmax of the reversed window = rows since the most recent extreme
        since_hi = np.argmax(win[:, ::-1], axis=1)
        since_lo = np.argmin(win[:, ::-1], axis=1)
        up[n:] = np.where(ok, 100.0 * (n - since_hi) / n, np.nan)
        down[n:] = np.where(ok, 100.0 * (n - since_lo) / n, np.nan)
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


def _one(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], Block]:
    return lambda x: {name: fn(x)}


# The indicator list: (feature names, function). Names come from the same entries that compute them.
SPECS: tuple[tuple[tuple[str, ...], Callable[[np.ndarray], Block]], ...] = (
    *(((f"rsi_{n}",), _one(f"rsi_{n}", lambda x, n=n: rsi(x, n))) for n in (7, 14, 21, 28)),
    *(((f"macd_{t}", f"macd_signal_{t}", f"macd_hist_{t}"), lambda x, a=a, b=b, c=c: _macd(x, a, b, c))
      for a, b, c, t in ((12, 26, 9, "12_26_9"), (5, 35, 5, "5_35_5"))),
    *(((f"stoch_k_{n}", f"stoch_d_{n}"), lambda x, n=n: _stoch(x, n)) for n in (14, 28, 56)),
    *(((f"cci_{n}",), _one(f"cci_{n}", lambda x, n=n: cci(x, n))) for n in (20, 40)),
    *(((f"willr_{n}",), _one(f"willr_{n}", lambda x, n=n: williams_r(x, n))) for n in (14, 28)),
    *(((f"roc_{n}",), _one(f"roc_{n}", lambda x, n=n: roc(x, n))) for n in (5, 10, 20, 60)),
    *(((f"atr_{n}",), _one(f"atr_{n}", lambda x, n=n: atr(x, n))) for n in (14, 28)),
    *(((f"adx_{n}", f"plus_di_{n}", f"minus_di_{n}"), lambda x, n=n: _adx(x, n)) for n in (14, 28)),
    *(((f"ema_dist_{n}",), _one(f"ema_dist_{n}", lambda x, n=n: x - ema(x, n))) for n in (10, 20, 50, 100)),
    *(((f"sma_dist_{n}",), _one(f"sma_dist_{n}", lambda x, n=n: x - rolling_mean(x, n))) for n in (10, 20, 50, 100)),
    *(((f"mom_{n}",), _one(f"mom_{n}", lambda x, n=n: diff(x, n))) for n in (10, 30)),
    (("trix_15",), _one("trix_15", lambda x: trix(x, 15))),
    *(((f"zscore_{n}",), _one(f"zscore_{n}", lambda x, n=n: safe_div(x - rolling_mean(x, n), rolling_std(x, n))))
      for n in (20, 60)),
    (("aroon_up_25", "aroon_down_25", "aroon_osc_25"), lambda x: _aroon(x, 25)),
    (("dpo_20",), _one("dpo_20", lambda x: dpo(x, 20))),
    (("cmo_14",), _one("cmo_14", lambda x: cmo(x, 14))),
    (("ppo_12_26",), _one("ppo_12_26", lambda x: safe_div(ema(x, 12) - ema(x, 26), np.abs(ema(x, 26))) * 100)),
    (("er_10",), _one("er_10", lambda x: efficiency_ratio(x, 10))),
    (("bb_pctb_20", "bb_width_20"), lambda x: _bollinger(x, 20)),
    (("donchian_pos_20",), _one("donchian_pos_20", lambda x: safe_div(x - rolling_min(x, 20),
                                                                      rolling_max(x, 20) - rolling_min(x, 20)))),
    (("ema_slope_20",), _one("ema_slope_20", lambda x: diff(ema(x, 20)))),
)


def names() -> list[str]:
    return [n for spec_names, _ in SPECS for n in spec_names]


def compute(x: np.ndarray) -> Block:
    out: Block = {}
    for spec_names, fn in SPECS:
        block = fn(x)
        if tuple(block) != spec_names:
            raise AssertionError(f"technical spec {spec_names} produced {tuple(block)}")
        out.update(block)
    return out
