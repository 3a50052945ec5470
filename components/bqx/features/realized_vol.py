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

import numpy as np

from bqx.features.rolling import rolling_mean, rolling_var, safe_div, shift

WINDOWS: tuple[int, ...] = (15, 30, 60, 120, 240)
FIELDS: tuple[str, ...] = ("rv", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang", "bipower",
                           "jump_share", "downside_share")


def names() -> list[str]:
    return [f"{f}{w}" for w in WINDOWS for f in FIELDS]


def per_bar(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    hl = np.log(h / lo)
    co = np.log(c / o)
    prev_c = shift(c, 1)
    r = np.log(c / prev_c)
    return {
        "r": r,
        "parkinson": hl**2 / (4.0 * np.log(2.0)),
        "garman_klass": 0.5 * hl**2 - (2.0 * np.log(2.0) - 1.0) * co**2,
        "rogers_satchell": np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o),
        "open_jump": np.log(o / prev_c),
        "open_close": co,
        "bipower_term": np.abs(r) * shift(np.abs(r), 1),
    }


def compute(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    b = per_bar(o, h, lo, c)
    r2 = b["r"] ** 2
    down = np.where(b["r"] < 0, r2, 0.0)
    down[np.isnan(b["r"])] = np.nan
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        rv = rolling_mean(r2, w)
        rs = rolling_mean(b["rogers_satchell"], w)
        k = 0.34 / (1.34 + (w + 1) / (w - 1))
        yz = rolling_var(b["open_jump"], w) + k * rolling_var(b["open_close"], w) + (1 - k) * rs
        bv = (np.pi / 2.0) * rolling_mean(b["bipower_term"], w)
        out[f"rv{w}"] = np.sqrt(rv)
        out[f"parkinson{w}"] = np.sqrt(rolling_mean(b["parkinson"], w))
        out[f"garman_klass{w}"] = np.sqrt(np.maximum(rolling_mean(b["garman_klass"], w), 0.0))
        out[f"rogers_satchell{w}"] = np.sqrt(np.maximum(rs, 0.0))
        out[f"yang_zhang{w}"] = np.sqrt(np.maximum(yz, 0.0))
        out[f"bipower{w}"] = np.sqrt(bv)
        jump = np.maximum(rv - bv, 0.0)
        out[f"jump_share{w}"] = np.where(rv > 0, safe_div(jump, rv), np.where(np.isnan(rv), np.nan, 0.0))
        out[f"downside_share{w}"] = np.where(rv > 0, safe_div(rolling_mean(down, w), rv),
                                             np.where(np.isnan(rv), np.nan, 0.0))
    return out
