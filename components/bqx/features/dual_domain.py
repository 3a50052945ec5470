"""``dual_domain``: rate_idx against BQX (28 features).

With r = ln(idx_t / idx_{t-1}) and q = bqx_t - bqx_{t-1}, for W in (30, 60, 120, 240):
``corr{W}`` corr(r, q); ``beta{W}`` cov(r, q) / var(r); ``zdiff{W}`` = z(idx) - z(bqx), each level's
z-score over W; ``sign_agree{W}`` share of rows where r and q have the same sign; ``divergence{W}`` =
the W-row move of idx in units of its own volatility (sum r / (sd(r) sqrt W)) minus the same for BQX;
``vol_ratio{W}`` sd(q) / sd(r); ``lead_corr{W}`` corr(r_{t-1}, q_t).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.rolling import (
    diff,
    rolling_corr,
    rolling_cov,
    rolling_mean,
    rolling_std,
    rolling_sum,
    rolling_var,
    safe_div,
    shift,
)

WINDOWS: tuple[int, ...] = (30, 60, 120, 240)
FIELDS: tuple[str, ...] = ("corr", "beta", "zdiff", "sign_agree", "divergence", "vol_ratio", "lead_corr")


def names() -> list[str]:
    return [f"{f}{w}" for w in WINDOWS for f in FIELDS]


def compute(idx: np.ndarray, bqx: np.ndarray) -> dict[str, np.ndarray]:
    r = np.log(idx / shift(idx, 1))
    q = diff(bqx)
    agree = np.where(np.isfinite(r) & np.isfinite(q), (np.sign(r) == np.sign(q)).astype(np.float64), np.nan)
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        sd_r, sd_q = rolling_std(r, w), rolling_std(q, w)
        z_i = safe_div(idx - rolling_mean(idx, w), rolling_std(idx, w))
        z_b = safe_div(bqx - rolling_mean(bqx, w), rolling_std(bqx, w))
        out[f"corr{w}"] = rolling_corr(r, q, w)
        out[f"beta{w}"] = safe_div(rolling_cov(r, q, w), rolling_var(r, w, ddof=0))
        out[f"zdiff{w}"] = z_i - z_b
        out[f"sign_agree{w}"] = rolling_mean(agree, w)
        out[f"divergence{w}"] = safe_div(rolling_sum(r, w), sd_r * np.sqrt(w)) - safe_div(rolling_sum(q, w),
                                                                                       sd_q * np.sqrt(w))
        out[f"vol_ratio{w}"] = safe_div(sd_q, sd_r)
        out[f"lead_corr{w}"] = rolling_corr(shift(r, 1), q, w)
    return {k: out[k] for k in names()}


# --- online: one row at a time (see bqx.features.latest) ---
SPAN = max(WINDOWS) + 1


@njit(cache=True)
def online_step(t: int, idx: np.ndarray, bqx: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    # the last SPAN rows, newest last: r, q, r one row earlier, sign agreement, idx, bqx
    s = np.full((6, SPAN), np.nan)
    for k in range(min(SPAN, t + 1)):
        i, col = t - k, SPAN - 1 - k
        r = np.log(idx[i] / lt.lag(idx, i, 1))
        q = bqx[i] - lt.lag(bqx, i, 1)
        s[0, col], s[1, col], s[4, col], s[5, col] = r, q, idx[i], bqx[i]
        s[3, col] = (1.0 if np.sign(r) == np.sign(q) else 0.0) if (np.isfinite(r) and np.isfinite(q)) else np.nan
    s[2, 1:] = s[0, :-1]
    last = SPAN - 1
    for i, w in enumerate(WINDOWS):
        r, q = s[0], s[1]
        sd_r, sd_q = lt.wstd(r, last, w, 1), lt.wstd(q, last, w, 1)
        z_i = lt.sdiv(idx[t] - lt.wmean(s[4], last, w), lt.wstd(s[4], last, w, 1))
        z_b = lt.sdiv(bqx[t] - lt.wmean(s[5], last, w), lt.wstd(s[5], last, w, 1))
        j = len(FIELDS) * i
        out[j] = lt.wcorr(r, q, last, w)
        out[j + 1] = lt.sdiv(lt.wcov(r, q, last, w, 0), lt.wvar(r, last, w, 0))
        out[j + 2] = z_i - z_b
        out[j + 3] = lt.wmean(s[3], last, w)
        out[j + 4] = lt.sdiv(lt.wsum(r, last, w), sd_r * np.sqrt(w)) - lt.sdiv(lt.wsum(q, last, w), sd_q * np.sqrt(w))
        out[j + 5] = lt.sdiv(sd_q, sd_r)
        out[j + 6] = lt.wcorr(s[2], q, last, w)
    return 0
