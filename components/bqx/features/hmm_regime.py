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
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.family import Family, Online
from bqx.features.incremental import since
from bqx.features.rolling import ema, rolling_mean, rolling_sum, rows_since

STATES = 3
CUSUM_K, CUSUM_H = 0.5, 5.0
EM_ITERATIONS, EM_TOL = 200, 1e-8
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


@njit(cache=True)
def _cusum(z: np.ndarray, k: float, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(z)
    pos, neg, alarm = np.empty(n), np.empty(n), np.zeros(n)
    sp = sn = 0.0
    for t in range(n):
        sp = max(0.0, sp + z[t] - k)
        sn = max(0.0, sn - z[t] - k)
        if sp > h or sn > h:
            alarm[t] = 1.0
            pos[t], neg[t] = sp, sn
            sp = sn = 0.0
        else:
            pos[t], neg[t] = sp, sn
    return pos, neg, alarm


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


def compute(idx: np.ndarray, fit_rows: int, fitted: tuple | None = None) -> dict[str, np.ndarray]:
    """Every feature, the filter running from row ``fit_rows`` on the fit of the rows before it; or, with
    ``fitted`` (``from_snapshot``'s parameters: start row, prior, transitions, means, variances, CUSUM
    scale), from that start row on a fit made elsewhere, as the online kernel does with a snapshot."""
    n = len(idx)
    out = {name: np.full(n, np.nan) for name in NAMES}
    r = np.full(n, np.nan)
    r[1:] = np.log(idx[1:] / idx[:-1]) * 1e4
    if fitted is None:
        fit = fit_start(idx, fit_rows)
        if fit is None:
            return out
        start, (init, trans, mu, var, sd) = fit_rows, fit
    else:
        start, init, trans, mu, var, sd = fitted
        if n <= start or not np.isfinite(sd):
            return out
    live = slice(start, n)
    obs = r[live]
    alpha, loglik = forward_filter(np.ascontiguousarray(obs), init, trans, mu, var)
    prior = np.vstack([init[None, :], alpha[:-1] @ trans])
    m = len(obs)
    state = np.argmax(alpha, axis=1)
    change = np.ones(m, dtype=bool)
    change[1:] = state[1:] != state[:-1]
    duration = rows_since(change)
    pos, neg, alarm = _cusum(obs / sd, CUSUM_K, CUSUM_H)
    pred_mean = prior @ mu
    pred_var = prior @ (var + mu**2) - pred_mean**2
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.sum(np.where(alpha > 0, alpha * np.log(alpha), 0.0), axis=1) / np.log(STATES)
    values = {
        "p_low": alpha[:, 0], "p_mid": alpha[:, 1], "p_high": alpha[:, 2], "state": state.astype(np.float64),
        "state_duration": duration, "exp_var": alpha @ var, "exp_mean": alpha @ mu, "entropy": ent,
        "stay_prob": trans[state, state], "cusum_pos": pos, "cusum_neg": neg, "cusum_alarm": alarm,
        "rows_since_cusum_alarm": rows_since((alarm > 0) | (np.arange(m) == 0)),
        "high_state_duration": np.where(state == 2, duration, 0.0),
        "switches240": rolling_sum(change.astype(np.float64), 240), "pred_loglik": loglik,
        "pred_z": (obs - pred_mean) / np.sqrt(pred_var),
        "p_high_mean60": rolling_mean(alpha[:, 2], 60), "p_high_mean240": rolling_mean(alpha[:, 2], 240),
    }
    for j, label in enumerate(("low", "mid", "high")):
        d = np.full(m, np.nan)
        d[1:] = np.diff(alpha[:, j])
        values[f"dp_{label}"] = d
        values[f"p_{label}_ema30"] = ema(alpha[:, j], 30)
    for name, v in values.items():
        out[name][live] = v
    return out


# --- online: the forward filter one row at a time (see bqx.features.latest) ---
RING = 240
# state: filtered probabilities (3), argmax, rows since it changed, CUSUM (pos, neg), rows since alarm,
# three EMA30 slots (2 each), live rows seen, then rings of p_high and of argmax changes.
_ALPHA, _STATE, _DUR, _CUSUM, _ALARM, _EMA, _ROWS = 0, 3, 4, 5, 7, 8, 14
_P_HIGH = _ROWS + 1
_CHANGE = _P_HIGH + RING
ONLINE_STATE = _CHANGE + RING


def online_fit(series: dict[str, np.ndarray], fit_rows: int) -> tuple:
    """The batch fit on the history's first ``fit_rows`` rows: parameters, the prior the filter starts
    from, and the fit window's stdev (CUSUM scale). Too short a history gives NaN parameters (no output)."""
    fitted = fit_start(series["idx"], fit_rows)
    if fitted is None:
        nan = np.full(STATES, np.nan)
        return (fit_rows, nan, np.full((STATES, STATES), np.nan), nan, nan, np.nan)
    return (fit_rows, *fitted)


@njit(cache=True)
def online_step(t: int, idx: np.ndarray, fit_rows: int, init: np.ndarray, trans: np.ndarray, mu: np.ndarray,
                var: np.ndarray, sd: float, state: np.ndarray, out: np.ndarray) -> int:
    out[:] = np.nan
    n = int(state[_ROWS])  # live rows before this one (the filter starts at row fit_rows)
    if n == 0 and (t < fit_rows or np.isnan(sd)):
        return ONLINE_STATE
    state[_ROWS] = n + 1
    obs = np.log(idx[t] / idx[t - 1]) * 1e4
    prior = init.copy() if n == 0 else _vecmat(state[_ALPHA:_ALPHA + STATES], trans)
    prev = state[_ALPHA:_ALPHA + STATES].copy()
    joint = prior * _density(obs, mu, var)
    c = joint.sum()
    if c <= 0 or not np.isfinite(c):
        alpha, loglik = prior, -np.inf
    else:
        alpha, loglik = joint / c, np.log(c)
    state[_ALPHA:_ALPHA + STATES] = alpha
    st = int(np.argmax(alpha))
    change = n == 0 or st != int(state[_STATE])
    state[_STATE] = st
    duration = since(state, _DUR, 1.0 if change else 0.0)
    sp = max(0.0, (state[_CUSUM] if n else 0.0) + obs / sd - CUSUM_K)
    sn = max(0.0, (state[_CUSUM + 1] if n else 0.0) - obs / sd - CUSUM_K)
    alarm = 1.0 if (sp > CUSUM_H or sn > CUSUM_H) else 0.0
    state[_CUSUM], state[_CUSUM + 1] = (0.0, 0.0) if alarm else (sp, sn)
    state[_P_HIGH + n % RING] = alpha[2]
    state[_CHANGE + n % RING] = 1.0 if change else 0.0
    pred_mean = (prior * mu).sum()
    pred_var = (prior * (var + mu**2)).sum() - pred_mean**2
    ent = 0.0
    for p in alpha:
        if p > 0:
            ent -= p * np.log(p)
    out[0], out[1], out[2], out[3], out[4] = alpha[0], alpha[1], alpha[2], float(st), duration
    for j in range(STATES):
        out[5 + j] = alpha[j] - prev[j] if n else np.nan
        out[8 + j] = lt.ema(state, _EMA + 2 * j, alpha[j], 30)
    out[11], out[12] = (alpha * var).sum(), (alpha * mu).sum()
    out[13], out[14] = ent / np.log(STATES), trans[st, st]
    out[15], out[16], out[17] = sp, sn, alarm
    out[18] = since(state, _ALARM, 1.0 if (alarm > 0 or n == 0) else 0.0)
    for k, w in enumerate((60, 240)):
        if n + 1 >= w:
            total = 0.0
            for back in range(w):
                total += state[_P_HIGH + (n - back) % RING]
            out[19 + k] = total / w
    out[21] = duration if st == 2 else 0.0
    if n + 1 >= RING:
        out[22] = state[_CHANGE:_CHANGE + RING].sum()
    out[23] = loglik
    out[24] = (obs - pred_mean) / np.sqrt(pred_var)
    return ONLINE_STATE


def online_init(state: np.ndarray) -> None:
    state[:] = 0.0
    state[_DUR] = state[_ALARM] = np.nan


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
    return (1, np.asarray(fit["prior"], dtype=np.float64), np.asarray(fit["trans"], dtype=np.float64),
            np.asarray(fit["mu"], dtype=np.float64), np.asarray(fit["var"], dtype=np.float64), float(fit["sd"]))


TABLES: dict[str, Family] = {
    "hmm_regime": Family(lambda s: names(),
                         lambda inp, s: compute(inp.idx, s.features.hmm_fit_rows,
                                                from_snapshot({"hmm": inp.hmm_fit}) if inp.hmm_fit else None),
                         lambda s: warmup(s.features.hmm_fit_rows),
                         Online(("idx",), online_step, state_size=lambda s: ONLINE_STATE,
                                init=online_init,
                                fit=lambda series, s: online_fit(series, s.features.hmm_fit_rows),
                                from_snapshot=from_snapshot,
                                snapshot_warmup=lambda s: warmup(SNAPSHOT_SETTLE))),
}
