"""``hmm_regime``: 3-state Gaussian HMM regimes of rate_idx returns, forward-filtered only (25 features).

Observations are r = ln(idx_t / idx_{t-1}) in bps. Parameters (means, variances, transitions) are
fitted by Baum-Welch on the first ``hmm_fit_rows`` bars only; those rows are warm-up (NaN). From then
on the filter runs forward: P(state_t | r_1..r_t), never the smoothed posterior (hmmlearn's
predict_proba smooths over the whole sequence and so leaks the future). States are ordered by
variance: low, mid, high.

Features: ``p_low p_mid p_high`` filtered probabilities, ``state`` (argmax, 0..2), ``state_duration``
(rows since the argmax last changed), ``dp_*`` one-row changes, ``p_*_ema30``, ``exp_var`` and
``exp_mean`` (probability-weighted state variance and mean), ``entropy`` (of the filtered
distribution, over ln 3), ``stay_prob`` (the transition probability of staying in the argmax state),
``cusum_pos`` / ``cusum_neg`` (two-sided CUSUM of r standardised by the fit window's stdev, k = 0.5,
reset after an alarm at h = 5), ``cusum_alarm``, ``rows_since_cusum_alarm`` (the filter's first row counts as a reset),
``p_high_mean60`` and
``p_high_mean240``, ``high_state_duration`` (the duration while in the high state, else 0),
``switches240`` (argmax changes over 240 rows), ``pred_loglik`` (log predictive density of r_t given
the filter at t-1) and ``pred_z`` (r_t standardised by the predictive mean and stdev).

The features are declared once, as expressions (:func:`table`) over the filter and CUSUM primitives
(:mod:`bqx.features.spec`), with the fit as the kernel's parameters (:data:`PARAMS`); batch, serving
and batch prediction run that one generated kernel. Only the fit (Baum-Welch) is code of its own.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.config import Settings
from bqx.features.family import Family, Online
from bqx.features.spec import (
    Expr,
    Kernel,
    compile_table,
    cusum,
    diff,
    ema,
    eq,
    finite,
    gt,
    hmm_filter,
    item,
    keep_nan,
    lag,
    log,
    maximum,
    param,
    select,
    series,
    since,
    sqrt,
    wmean,
    wsum,
)

STATES = 3
CUSUM_K, CUSUM_H = 0.5, 5.0
EM_ITERATIONS, EM_TOL = 200, 1e-8
LABELS = ("low", "mid", "high")  # the states, by variance
NAMES: tuple[str, ...] = (
    "p_low", "p_mid", "p_high", "state", "state_duration", "dp_low", "dp_mid", "dp_high", "p_low_ema30",
    "p_mid_ema30", "p_high_ema30", "exp_var", "exp_mean", "entropy", "stay_prob", "cusum_pos", "cusum_neg",
    "cusum_alarm", "rows_since_cusum_alarm", "p_high_mean60", "p_high_mean240", "high_state_duration",
    "switches240", "pred_loglik", "pred_z",
)


def names() -> list[str]:
    return list(NAMES)


def warmup(fit_rows: int) -> int:
    """The fit window, then the longest rolling window over filtered values."""
    return fit_rows + 240


@njit(cache=True)
def _density(x: float, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * (x - mu) ** 2 / var) / np.sqrt(2 * np.pi * var)


@njit(cache=True)
def _vecmat(v: np.ndarray, m: np.ndarray) -> np.ndarray:
    """v @ m as a loop: numba sends @ to BLAS through scipy, which the serving image does not carry."""
    out = np.zeros(m.shape[1])
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            out[j] += v[i] * m[i, j]
    return out


@njit(cache=True)
def _matvec(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros(m.shape[0])
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            out[i] += m[i, j] * v[j]
    return out


@njit(cache=True)
def forward_filter(obs: np.ndarray, start: np.ndarray, trans: np.ndarray, mu: np.ndarray,
                   var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filtered state probabilities and the log predictive density of each observation."""
    n, k = len(obs), len(mu)
    alpha = np.empty((n, k))
    loglik = np.empty(n)
    prior = start.copy()
    for t in range(n):
        if t > 0:
            prior = _vecmat(alpha[t - 1], trans)
        joint = prior * _density(obs[t], mu, var)
        c = joint.sum()
        if c <= 0 or not np.isfinite(c):  # an observation no state explains: keep the prior
            alpha[t] = prior
            loglik[t] = -np.inf
        else:
            alpha[t] = joint / c
            loglik[t] = np.log(c)
    return alpha, loglik


@njit(cache=True)
def _baum_welch(obs: np.ndarray, start: np.ndarray, trans: np.ndarray, mu: np.ndarray, var: np.ndarray,
                iterations: int, tol: float, var_floor: float) -> tuple:
    n, k = len(obs), len(mu)
    prev = -np.inf
    for _ in range(iterations):
        alpha, loglik = forward_filter(obs, start, trans, mu, var)
        total = loglik.sum()
        beta = np.ones((n, k))
        for t in range(n - 2, -1, -1):
            b = _matvec(trans, _density(obs[t + 1], mu, var) * beta[t + 1])
            beta[t] = b / np.exp(loglik[t + 1])
        gamma = alpha * beta
        for t in range(n):
            gamma[t] /= gamma[t].sum()
        xi = np.zeros((k, k))
        for t in range(n - 1):
            e = _density(obs[t + 1], mu, var) * beta[t + 1]
            m = np.outer(alpha[t], e) * trans
            xi += m / m.sum()
        start = gamma[0] / gamma[0].sum()
        for i in range(k):
            trans[i] = xi[i] / xi[i].sum()
        w = gamma.sum(axis=0)
        for j in range(k):
            mu[j] = (gamma[:, j] * obs).sum() / w[j]
            var[j] = max((gamma[:, j] * (obs - mu[j]) ** 2).sum() / w[j], var_floor)
        if abs(total - prev) < tol * abs(total):
            break
        prev = total
    return start, trans, mu, var


def fit(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Baum-Welch from a deterministic start (variance terciles of |r|); states sorted by variance."""
    o = np.ascontiguousarray(obs, dtype=np.float64)
    order = np.argsort(np.abs(o))
    var0 = np.array([np.mean(o[part] ** 2) for part in np.array_split(order, STATES)]) + 1e-12
    mu0 = np.zeros(STATES)
    trans0 = np.full((STATES, STATES), 0.05 / (STATES - 1)) + np.eye(STATES) * (0.95 - 0.05 / (STATES - 1))
    start0 = np.full(STATES, 1.0 / STATES)
    floor = 1e-6 * float(np.var(o)) + 1e-12
    start, trans, mu, var = _baum_welch(o, start0, trans0, mu0, var0, EM_ITERATIONS, EM_TOL, floor)
    perm = np.argsort(var)
    return start[perm], trans[np.ix_(perm, perm)], mu[perm], var[perm]


def fit_start(idx: np.ndarray, fit_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float] | None:
    """The fit on the first ``fit_rows`` rows' returns, the prior the forward filter starts from (the
    state distribution the fit window ended with, one step on) and the window's stdev (CUSUM scale);
    None when the history is too short."""
    if len(idx) <= fit_rows or fit_rows < 100:
        return None
    r = np.log(idx[1:fit_rows] / idx[: fit_rows - 1]) * 1e4
    start, trans, mu, var = fit(r)
    alpha_fit, _ = forward_filter(np.ascontiguousarray(r), start, trans, mu, var)
    return alpha_fit[-1] @ trans, trans, mu, var, float(np.std(r))


def table() -> dict[str, Expr]:
    """Every feature as an expression over rate_idx and the fitted parameters (:data:`PARAMS`)."""
    idx = series("idx")
    r = log(idx / lag(idx, 1)) * 1e4
    start, init, trans = param("start"), param("init", (STATES,)), param("trans", (STATES, STATES))
    mu, var, sd = param("mu", (STATES,)), param("var", (STATES,)), param("sd")
    p0, p1, p2, loglik, pred_mean, pred_var = hmm_filter(r, start, init, trans, mu, var)
    p = (p0, p1, p2)
    state = select(gt(p2, maximum(p0, p1)), 2.0, select(gt(p1, p0), 1.0, 0.0))  # argmax, the first on ties
    before = lag(state, 1)
    change = keep_nan(select(finite(before), 1.0 - eq(state, before), 1.0), state)  # the first row counts
    duration = since(change)
    pos, neg, alarm = cusum(keep_nan(r / sd, p0), CUSUM_K, CUSUM_H)
    first = finite(p0) * (1.0 - finite(lag(p0, 1)))
    plogp = [select(gt(q, 0.0), q * log(q), 0.0) for q in p]
    values: dict[str, Expr] = {
        "p_low": p0, "p_mid": p1, "p_high": p2, "state": state, "state_duration": duration,
        **{f"dp_{label}": diff(q) for label, q in zip(LABELS, p, strict=True)},
        **{f"p_{label}_ema30": ema(q, 30) for label, q in zip(LABELS, p, strict=True)},
        "exp_var": p0 * item(var, 0) + p1 * item(var, 1) + p2 * item(var, 2),
        "exp_mean": p0 * item(mu, 0) + p1 * item(mu, 1) + p2 * item(mu, 2),
        "entropy": -(plogp[0] + plogp[1] + plogp[2]) / float(np.log(STATES)),
        "stay_prob": select(eq(state, 0.0), item(trans, 0, 0), select(eq(state, 1.0), item(trans, 1, 1),
                                                                      item(trans, 2, 2))),
        "cusum_pos": pos, "cusum_neg": neg, "cusum_alarm": alarm,
        "rows_since_cusum_alarm": since(keep_nan(maximum(alarm, first), p0)),
        "p_high_mean60": wmean(p2, 60), "p_high_mean240": wmean(p2, 240),
        "high_state_duration": select(eq(state, 2.0), duration, 0.0),
        "switches240": wsum(change, 240), "pred_loglik": loglik, "pred_z": (r - pred_mean) / sqrt(pred_var),
    }
    return {name: values[name] for name in NAMES}


PARAMS = ("start", "init", "trans", "mu", "var", "sd")  # the kernel's parameters, in its argument order


def kernel(s: Settings | None = None) -> Kernel:
    return compile_table(table(), PARAMS)


def compute(idx: np.ndarray, fit_rows: int, fitted: tuple | None = None) -> dict[str, np.ndarray]:
    """Every feature, the filter running from row ``fit_rows`` on the fit of the rows before it; or, with
    ``fitted`` (``from_snapshot``'s parameters: start row, prior, transitions, means, variances, CUSUM
    scale), from that start row on a fit made elsewhere, as serving does with a model package."""
    params = online_fit({"idx": idx}, fit_rows) if fitted is None else fitted
    return kernel().batch({"idx": idx}, params)


def online_fit(series: dict[str, np.ndarray], fit_rows: int) -> tuple:
    """The fit on the history's first ``fit_rows`` rows: the filter's start row, the prior it starts
    from, the parameters and the fit window's stdev (CUSUM scale), in :data:`PARAMS` order. Too short a
    history gives NaN parameters (no output)."""
    fitted = fit_start(series["idx"], fit_rows)
    if fitted is None:
        nan = np.full(STATES, np.nan)
        return (float(fit_rows), nan, np.full((STATES, STATES), np.nan), nan, nan, np.nan)
    return (float(fit_rows), *fitted)


# --- the training fit, shipped in the model package so the server does not refit on request history ---
SNAPSHOT_SETTLE = 240  # rows the filter runs before its values are used: it forgets its start geometrically


def snapshot(idx: np.ndarray, fit_rows: int) -> dict | None:
    """The fit of the batch function on this history (JSON-able), or None when it is too short."""
    fit_rows_, init, trans, mu, var, sd = online_fit({"idx": idx}, fit_rows)
    if not np.isfinite(sd):
        return None
    return {"fit_rows": int(fit_rows_), "prior": init.tolist(), "trans": trans.tolist(), "mu": mu.tolist(),
            "var": var.tolist(), "sd": sd}


def from_snapshot(state: dict) -> tuple | None:
    """Kernel parameters from a snapshot: the filter starts at the second seeded row from the fit's prior."""
    fit = state.get("hmm")
    if not fit:
        return None
    return (1.0, np.asarray(fit["prior"], dtype=np.float64), np.asarray(fit["trans"], dtype=np.float64),
            np.asarray(fit["mu"], dtype=np.float64), np.asarray(fit["var"], dtype=np.float64), float(fit["sd"]))


def _no_step(*args: object) -> int:
    raise AssertionError("hmm_regime steps through its generated kernel (Online.runtime)")


TABLES: dict[str, Family] = {
    "hmm_regime": Family(lambda s: names(),
                         lambda inp, s: compute(inp.idx, s.features.hmm_fit_rows,
                                                from_snapshot({"hmm": inp.hmm_fit}) if inp.hmm_fit else None),
                         lambda s: warmup(s.features.hmm_fit_rows),
                         Online((), _no_step, kernel=kernel,
                                fit=lambda series, s: online_fit(series, s.features.hmm_fit_rows),
                                from_snapshot=from_snapshot,
                                snapshot_warmup=lambda s: warmup(SNAPSHOT_SETTLE))),
}
