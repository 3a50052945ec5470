"""``technical_idx`` and ``technical_bqx``: 56 technical indicators of one series, applied to rate_idx
and to the primary BQX series.

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

Each indicator is declared once below as an expression (:mod:`bqx.features.spec`); the batch columns,
the online kernel and the warm-up come from that declaration.
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import (
    Expr,
    both,
    compile_table,
    diff,
    ema,
    gt,
    lag,
    maximum,
    positive,
    rows_since_max,
    rows_since_min,
    sdiv,
    select,
    series,
    wilder,
    wmad,
    wmax,
    wmean,
    wmin,
    wstd,
    wsum,
)

Table = dict[str, Expr]
PPO_SCALE = 100  # rows of the standard deviation the bounded PPO divides by


def rsi(x: Expr, n: int) -> Expr:
    up, down = wilder(positive(diff(x)), n), wilder(positive(-diff(x)), n)
    return 100.0 * sdiv(up, up + down)  # = 100 - 100 / (1 + up/down); 100 with no losses


def cci(tp: Expr, n: int) -> Expr:
    """Commodity channel index of a typical-price series: deviation from the window mean over 0.015
    times the window's mean absolute deviation."""
    return sdiv(tp - wmean(tp, n), 0.015 * wmad(tp, n))


def true_range(x: Expr, h: Expr, lo: Expr) -> Expr:
    """max(H - L, |H - C(t-1)|, |L - C(t-1)|); NaN on the first row (no previous close)."""
    prev = lag(x, 1)
    return maximum(maximum(h - lo, abs(h - prev)), abs(lo - prev))


def directional_movement(h: Expr, lo: Expr) -> tuple[Expr, Expr]:
    """(+DM, -DM): the up move H(t) - H(t-1) when it beats the down move L(t-1) - L(t) and is
    positive, and the other way round; 0 otherwise, NaN on the first row."""
    up, down = diff(h), -diff(lo)
    return select(both(gt(up, down), gt(up, 0.0)), up, 0.0), select(both(gt(down, up), gt(down, 0.0)), down, 0.0)


def table(x: Expr, h: Expr, lo: Expr, bounded_ppo: bool = False) -> Table:
    """Every indicator of close ``x`` with its bars' high ``h`` and low ``lo``, by name."""
    t: Table = {}
    for n in (7, 14, 21, 28):
        t[f"rsi_{n}"] = rsi(x, n)
    for fast, slow, signal in ((12, 26, 9), (5, 35, 5)):
        line = ema(x, fast) - ema(x, slow)
        tag = f"{fast}_{slow}_{signal}"
        sig = ema(line, signal)
        t[f"macd_{tag}"], t[f"macd_signal_{tag}"], t[f"macd_hist_{tag}"] = line, sig, line - sig
    for n in (14, 28, 56):
        k = 100.0 * sdiv(x - wmin(lo, n), wmax(h, n) - wmin(lo, n))
        t[f"stoch_k_{n}"], t[f"stoch_d_{n}"] = k, wmean(k, 3)
    for n in (20, 40):
        t[f"cci_{n}"] = cci((h + lo + x) / 3.0, n)
    for n in (14, 28):
        t[f"willr_{n}"] = -100.0 * sdiv(wmax(h, n) - x, wmax(h, n) - wmin(lo, n))
    for n in (5, 10, 20, 60):
        t[f"roc_{n}"] = diff(x, n)  # a difference: BQX crosses zero, so a ratio would explode
    tr = true_range(x, h, lo)
    for n in (14, 28):
        t[f"atr_{n}"] = wilder(tr, n)
    plus_dm, minus_dm = directional_movement(h, lo)
    for n in (14, 28):
        plus, minus = 100.0 * sdiv(wilder(plus_dm, n), wilder(tr, n)), 100.0 * sdiv(wilder(minus_dm, n), wilder(tr, n))
        t[f"adx_{n}"] = wilder(100.0 * sdiv(abs(plus - minus), plus + minus), n)
        t[f"plus_di_{n}"], t[f"minus_di_{n}"] = plus, minus
    for n in (10, 20, 50, 100):
        t[f"ema_dist_{n}"] = x - ema(x, n)
    for n in (10, 20, 50, 100):
        t[f"sma_dist_{n}"] = x - wmean(x, n)
    for n in (10, 30):
        t[f"mom_{n}"] = diff(x, n)
    t["trix_15"] = diff(ema(ema(ema(x, 15), 15), 15))
    for n in (20, 60):
        t[f"zscore_{n}"] = sdiv(x - wmean(x, n), wstd(x, n))
    up, down = 100.0 * (25 - rows_since_max(x, 26)) / 25, 100.0 * (25 - rows_since_min(x, 26)) / 25
    t["aroon_up_25"], t["aroon_down_25"], t["aroon_osc_25"] = up, down, up - down  # over 26 rows
    t["dpo_20"] = x - lag(wmean(x, 20), 11)  # causal: the SMA shifted back n/2 + 1 rows
    gain, loss = wsum(positive(diff(x)), 14), wsum(positive(-diff(x)), 14)
    t["cmo_14"] = 100.0 * sdiv(gain - loss, gain + loss)
    scale = wstd(x, PPO_SCALE) if bounded_ppo else abs(ema(x, 26)) / 100.0
    t["ppo_12_26"] = sdiv(ema(x, 12) - ema(x, 26), scale)
    t["er_10"] = sdiv(abs(diff(x, 10)), wsum(abs(diff(x)), 10))
    mid, sd = wmean(x, 20), wstd(x, 20, ddof=0)
    t["bb_pctb_20"], t["bb_width_20"] = sdiv(x - (mid - 2.0 * sd), 4.0 * sd), 4.0 * sd
    t["donchian_pos_20"] = sdiv(x - wmin(x, 20), wmax(x, 20) - wmin(x, 20))
    t["ema_slope_20"] = diff(ema(x, 20))
    return t


IDX = table(series("idx"), series("idx_high"), series("idx_low"))
BQX = table(series("bqx"), series("bqx"), series("bqx"), bounded_ppo=True)  # no intrabar range: H = L = C


TABLES = {"technical_idx": from_spec(lambda s: IDX), "technical_bqx": from_spec(lambda s: BQX)}


def names() -> list[str]:
    return list(IDX)


def compute(x: np.ndarray, high: np.ndarray | None = None, low: np.ndarray | None = None,
            bounded_ppo: bool = False) -> dict[str, np.ndarray]:
    """Every indicator of close series ``x`` (with its bars' ``high`` and ``low`` when they exist)."""
    # the series names of the registered tables, so these are the same (cached) kernels
    if high is None and low is None:
        b = series("bqx")
        return compile_table(table(b, b, b, bounded_ppo)).batch({"bqx": x})
    return compile_table(table(series("idx"), series("idx_high"), series("idx_low"), bounded_ppo)).batch(
        {"idx": x, "idx_high": x if high is None else high, "idx_low": x if low is None else low})
