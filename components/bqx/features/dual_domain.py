"""``dual_domain``: rate_idx against BQX (28 features).

With r = ln(idx_t / idx_{t-1}) and q = bqx_t - bqx_{t-1}, for W in (30, 60, 120, 240):
``corr{W}`` corr(r, q); ``beta{W}`` cov(r, q) / var(r); ``zdiff{W}`` = z(idx) - z(bqx), each level's
z-score over W; ``sign_agree{W}`` share of rows where r and q have the same sign; ``divergence{W}`` =
the W-row move of idx in units of its own volatility (sum r / (sd(r) sqrt W)) minus the same for BQX;
``vol_ratio{W}`` sd(q) / sd(r); ``lead_corr{W}`` corr(r_{t-1}, q_t).
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import (
    Expr,
    Table,
    compile_table,
    diff,
    eq,
    lag,
    log,
    sdiv,
    series,
    sign,
    wcorr,
    wcov,
    wmean,
    wstd,
    wsum,
    wvar,
)

WINDOWS: tuple[int, ...] = (30, 60, 120, 240)


def table(idx: Expr, bqx: Expr) -> Table:
    r, q = log(idx / lag(idx, 1)), diff(bqx)
    agree = eq(sign(r), sign(q))
    t: Table = {}
    for w in WINDOWS:
        sd_r, sd_q = wstd(r, w), wstd(q, w)
        z_i = sdiv(idx - wmean(idx, w), wstd(idx, w))
        z_b = sdiv(bqx - wmean(bqx, w), wstd(bqx, w))
        t[f"corr{w}"] = wcorr(r, q, w)
        t[f"beta{w}"] = sdiv(wcov(r, q, w), wvar(r, w, ddof=0))
        t[f"zdiff{w}"] = z_i - z_b
        t[f"sign_agree{w}"] = wmean(agree, w)
        t[f"divergence{w}"] = sdiv(wsum(r, w), sd_r * float(np.sqrt(w))) - sdiv(wsum(q, w), sd_q * float(np.sqrt(w)))
        t[f"vol_ratio{w}"] = sdiv(sd_q, sd_r)
        t[f"lead_corr{w}"] = wcorr(lag(r, 1), q, w)
    return t


TABLES = {"dual_domain": from_spec(lambda s: table(series("idx"), series("bqx")))}


def compute(idx: np.ndarray, bqx: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("idx"), series("bqx"))).batch({"idx": idx, "bqx": bqx})
