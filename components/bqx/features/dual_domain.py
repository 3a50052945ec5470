"""``dual_domain``: rate_idx against BQX (28 features).

With r = ln(idx_t / idx_{t-1}) and q = bqx_t - bqx_{t-1}, for W in (30, 60, 120, 240):
``corr{W}`` corr(r, q); ``beta{W}`` cov(r, q) / var(r); ``zdiff{W}`` = z(idx) - z(bqx), each level's
z-score over W; ``sign_agree{W}`` share of rows where r and q have the same sign; ``divergence{W}`` =
the W-row move of idx in units of its own volatility (sum r / (sd(r) sqrt W)) minus the same for BQX;
``vol_ratio{W}`` sd(q) / sd(r); ``lead_corr{W}`` corr(r_{t-1}, q_t).
"""

from __future__ import annotations

import numpy as np

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
