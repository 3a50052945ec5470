"""REG: rolling quadratic least-squares fits ``y = a x^2 + b x + c`` over trailing windows.

x counts rows inside the window, 0 (oldest) .. W-1 (newest, row t). Fields per window W:

- ``a_coef b_coef c_coef``: the fitted coefficients (per row^2, per row, level)
- ``a_term = a (W-1)^2``, ``b_term = b (W-1)``: the quadratic and linear parts at the window end
- ``yhat_end = a_term + b_term + c``: the fit at row t; ``resid_end = y(t) - yhat_end``
- ``r2`` (NaN for a flat window), ``rmse = sqrt(SSE / W)``
- ``quad_norm = a_term / sd``, ``lin_norm = b_term / sd`` with sd the window's sample stdev of y
  (scale-free, so rate_idx and BQX fits compare); ``resid_norm = resid_end / rmse``

The normal equations are solved in the symmetric basis u = (x - m) / m, m = (W-1)/2, whose Gram
matrix is well conditioned for every window; the window sums slide in O(1) per row and are
recomputed exactly every W rows (:func:`bqx.features.incremental.wpoly`).
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import Expr, Table, compile_table, maximum, sdiv, series, sqrt, wpoly

FIELDS: tuple[str, ...] = (
    "a_coef", "b_coef", "c_coef", "a_term", "b_term", "r2", "rmse",
    "yhat_end", "quad_norm", "lin_norm", "resid_end", "resid_norm",
)


def fit(y: Expr, window: int) -> dict[str, Expr]:
    """The 12 REG fields of the trailing window of ``window`` rows over y, by field name."""
    m = (window - 1) / 2.0
    u = (np.arange(window) - m) / m
    s0, s2, s4 = float(window), float(np.sum(u**2)), float(np.sum(u**4))
    sy, suy, su2y, syy, centre = wpoly(y, window)
    det = s4 * s0 - s2 * s2  # Gram matrix [[s4, 0, s2], [0, s2, 0], [s2, 0, s0]] solved in closed form
    alpha = (s0 * su2y - s2 * sy) / det
    beta = suy / s2
    gamma = (s4 * sy - s2 * su2y) / det
    sse = maximum(syy - (alpha * su2y + beta * suy + gamma * sy), 0.0)
    sst = maximum(syy - sy * sy / s0, 0.0)
    a = alpha / m**2
    b = beta / m - 2.0 * alpha / m
    c = alpha - beta + gamma + centre  # the fit at x = 0 (u = -1)
    a_term, b_term = a * float((window - 1) ** 2), b * float(window - 1)
    yhat_end = a_term + b_term + c
    rmse, sd = sqrt(sse / s0), sqrt(sst / (window - 1))
    resid_end = y - yhat_end
    return {
        "a_coef": a, "b_coef": b, "c_coef": c, "a_term": a_term, "b_term": b_term, "r2": 1.0 - sdiv(sse, sst),
        "rmse": rmse, "yhat_end": yhat_end, "quad_norm": sdiv(a_term, sd), "lin_norm": sdiv(b_term, sd),
        "resid_end": resid_end, "resid_norm": sdiv(resid_end, rmse),
    }


def table(y: Expr, windows: tuple[int, ...]) -> Table:
    return {f"w{w}_{field}": e for w in windows for field, e in fit(y, w).items()}


TABLES = {
    "reg_idx": from_spec(lambda s: table(series("idx"), s.features.reg_windows)),
    "reg_bqx": from_spec(lambda s: table(series("bqx"), s.features.reg_windows)),
}


def names(windows: tuple[int, ...]) -> list[str]:
    return [f"w{w}_{f}" for w in windows for f in FIELDS]


def compute(y: np.ndarray, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    return compile_table(table(series("idx"), tuple(windows))).batch({"idx": y})  # reg_idx's kernel


def fit_window(y: np.ndarray, window: int) -> dict[str, np.ndarray]:
    """The 12 REG fields of one trailing window over an array (the declared :func:`fit`)."""
    return compile_table(fit(series("y"), window)).batch({"y": y})

