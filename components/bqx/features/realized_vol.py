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
from numba import njit

from bqx.features import latest as lt
from bqx.features.family import Family, Online
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


# --- online: one row at a time (see bqx.features.latest) ---
SPAN = max(WINDOWS) + 1  # rows of per-bar terms a step reads


@njit(cache=True)
def online_step(t: int, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, state: np.ndarray,
                out: np.ndarray) -> int:
    # per-bar terms of the last SPAN rows, newest last (NaN before row 0): r, parkinson, gk, rs, jump, oc, bp, down
    terms = np.full((8, SPAN), np.nan)
    ln2 = np.log(2.0)
    for k in range(min(SPAN, t + 1)):
        i, col = t - k, SPAN - 1 - k
        hl, co = np.log(h[i] / lo[i]), np.log(c[i] / o[i])
        prev = lt.lag(c, i, 1)
        r = np.log(c[i] / prev)
        terms[0, col] = r
        terms[1, col] = hl**2 / (4.0 * ln2)
        terms[2, col] = 0.5 * hl**2 - (2.0 * ln2 - 1.0) * co**2
        terms[3, col] = np.log(h[i] / c[i]) * np.log(h[i] / o[i]) + np.log(lo[i] / c[i]) * np.log(lo[i] / o[i])
        terms[4, col] = np.log(o[i] / prev)
        terms[5, col] = co
        terms[7, col] = np.nan if np.isnan(r) else (r * r if r < 0 else 0.0)
    for col in range(1, SPAN):
        terms[6, col] = abs(terms[0, col]) * abs(terms[0, col - 1])
    r2 = terms[0] ** 2
    last = SPAN - 1
    for i, w in enumerate(WINDOWS):
        rv = lt.wmean(r2, last, w)
        rs = lt.wmean(terms[3], last, w)
        k = 0.34 / (1.34 + (w + 1) / (w - 1))
        yz = lt.wvar(terms[4], last, w, 1) + k * lt.wvar(terms[5], last, w, 1) + (1 - k) * rs
        bv = (np.pi / 2.0) * lt.wmean(terms[6], last, w)
        j = len(FIELDS) * i
        out[j] = np.sqrt(rv)
        out[j + 1] = np.sqrt(lt.wmean(terms[1], last, w))
        gk = lt.wmean(terms[2], last, w)
        out[j + 2] = np.sqrt(max(gk, 0.0)) if np.isfinite(gk) else np.nan
        out[j + 3] = np.sqrt(max(rs, 0.0)) if np.isfinite(rs) else np.nan
        out[j + 4] = np.sqrt(max(yz, 0.0)) if np.isfinite(yz) else np.nan
        out[j + 5] = np.sqrt(bv)
        if np.isnan(rv):
            out[j + 6] = out[j + 7] = np.nan
        elif rv > 0:
            out[j + 6] = lt.sdiv(max(rv - bv, 0.0) if np.isfinite(bv) else np.nan, rv)
            out[j + 7] = lt.sdiv(lt.wmean(terms[7], last, w), rv)
        else:
            out[j + 6] = out[j + 7] = 0.0
    return 0


TABLES: dict[str, Family] = {
    "realized_vol": Family(lambda s: names(),
                           lambda inp, s: compute(inp.open, inp.high, inp.low, inp.close),
                           lambda s: SPAN,
                           Online(("open", "high", "low", "close"), online_step)),
}
