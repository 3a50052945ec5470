"""``realized_vol``: realized-volatility estimators from OHLC bars (40 features).

Per bar, with natural logs: r = ln(C_t / C_{t-1}); Parkinson (ln H/L)^2 / (4 ln 2); Garman-Klass
0.5 (ln H/L)^2 - (2 ln 2 - 1)(ln C/O)^2; Rogers-Satchell ln(H/C) ln(H/O) + ln(L/C) ln(L/O).
For each window W in (15, 30, 60, 120, 240), as per-bar volatilities (square roots of mean variances):

- ``rv{W}`` sqrt(mean r^2); ``parkinson{W}``, ``garman_klass{W}``, ``rogers_satchell{W}`` sqrt of the
  window mean of the per-bar estimator (Garman-Klass floored at 0)
- ``yang_zhang{W}``: sqrt(s_o^2 + k s_c^2 + (1 - k) RS) with s_o^2 the sample variance of the opening
  jumps ln(O_t / C_{t-1}), s_c^2 that of ln(C_t / O_t), RS the Rogers-Satchell mean, and
  k = 0.34 / (1.34 + (W + 1) / (W - 1))
- ``bipower{W}``: sqrt((pi / 2) mean |r_t| |r_{t-1}|)
- ``jump_share{W}``: max(RV - BV, 0) / RV, the share of variance from jumps (0 when RV is 0)
- ``downside_share{W}``: sum of r^2 over falling bars / sum of r^2
"""

from __future__ import annotations

import math

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import (
    Expr,
    Table,
    compile_table,
    gt,
    lag,
    log,
    maximum,
    sdiv,
    select,
    series,
    sqrt,
    wmean,
    wvar,
)

WINDOWS: tuple[int, ...] = (15, 30, 60, 120, 240)
LN2 = math.log(2.0)


def table(o: Expr, h: Expr, lo: Expr, c: Expr) -> Table:
    hl, co, r = log(h / lo), log(c / o), log(c / lag(c, 1))
    parkinson = hl * hl / (4.0 * LN2)
    garman_klass = 0.5 * hl * hl - (2.0 * LN2 - 1.0) * co * co
    rogers_satchell = log(h / c) * log(h / o) + log(lo / c) * log(lo / o)
    open_jump = log(o / lag(c, 1))
    bipower_term = abs(r) * abs(lag(r, 1))
    r2 = r * r
    down = select(gt(0.0, r), r2, 0.0)  # squared returns of falling bars (NaN kept)
    t: Table = {}
    for w in WINDOWS:
        rv, rs = wmean(r2, w), wmean(rogers_satchell, w)
        k = 0.34 / (1.34 + (w + 1) / (w - 1))
        yz = wvar(open_jump, w) + k * wvar(co, w) + (1 - k) * rs
        bv = (math.pi / 2.0) * wmean(bipower_term, w)
        t[f"rv{w}"] = sqrt(rv)
        t[f"parkinson{w}"] = sqrt(wmean(parkinson, w))
        t[f"garman_klass{w}"] = sqrt(maximum(wmean(garman_klass, w), 0.0))
        t[f"rogers_satchell{w}"] = sqrt(maximum(rs, 0.0))
        t[f"yang_zhang{w}"] = sqrt(maximum(yz, 0.0))
        t[f"bipower{w}"] = sqrt(bv)
        t[f"jump_share{w}"] = select(gt(rv, 0.0), sdiv(maximum(rv - bv, 0.0), rv), 0.0)  # 0 when RV is 0
        t[f"downside_share{w}"] = select(gt(rv, 0.0), sdiv(wmean(down, w), rv), 0.0)
    return t


TABLES = {"realized_vol": from_spec(lambda s: table(series("open"), series("high"), series("low"), series("close")))}


def compute(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("open"), series("high"), series("low"), series("close"))).batch(
        {"open": o, "high": h, "low": lo, "close": c})
