"""``error_correction``: rolling cointegration of the pair with its two legs through an anchor (30 features).

Pair AB is the spread of its legs ln(A/K) and ln(B/K) through an anchor currency K (the first of USD,
EUR, JPY that is neither A nor B), so y = ln(A/B) is regressed, over trailing windows W in (240, 1440),
on each leg x alone: y = alpha + beta x + e (Engle-Granger style, rolling, causal). Per leg j (1 = A/K,
2 = B/K) and W: ``leg{j}_beta{W}``, ``leg{j}_r2{W}``, ``leg{j}_resid{W}`` (e at row t), ``leg{j}_z{W}`` (e_t over
the residual stdev), ``leg{j}_velocity{W}`` (e_t - e_{t-1} at the current beta), ``leg{j}_phi{W}`` (slope of
the residual's change on its lagged level in the window: negative = reverting) and
``leg{j}_half_life{W}`` = -ln 2 / ln(1 + phi) in rows, capped at 10 W when the spread does not revert
(phi >= 0). ``z_gap{W}`` = z of leg 1 minus z of leg 2. A leg missing from the panel gives NaN.

Declared once as expressions over the panel's log closes (:func:`table`): the pair's column ``y`` and
each leg's quoting pair ``leg1``/``leg2``, whose sign (+1 when the panel quotes A/K, -1 when it quotes
K/A) is a parameter. Covariances of log-price levels go through centred window variances by
polarisation, cov(a, b) = (var(a + b) - var(a - b)) / 4, which stay exact where raw moments of levels
near 5 (the yen crosses) would cancel.
"""

from __future__ import annotations

import numpy as np

from bqx.config import Settings
from bqx.features.family import Family, PanelBinding, from_panel_spec, panel_batch
from bqx.features.spec import (
    Expr,
    Kernel,
    both,
    clip,
    compile_table,
    gt,
    lag,
    log1p,
    minimum,
    param,
    positive,
    sdiv,
    select,
    series,
    sqrt,
    wmean,
    wvar,
)
from bqx.pairs import split_pair
from bqx.panel import Panel

WINDOWS: tuple[int, ...] = (240, 1440)
FIELDS: tuple[str, ...] = ("beta", "r2", "resid", "z", "velocity", "phi", "half_life")
ANCHORS: tuple[str, ...] = ("USD", "EUR", "JPY")
PARAMS = ("sign1", "sign2")  # the kernel's parameters: each leg's sign on its quoting pair's log close


def names() -> list[str]:
    return [f"leg{j}_{f}{w}" for j in (1, 2) for w in WINDOWS for f in FIELDS] + [f"z_gap{w}" for w in WINDOWS]


def anchor_for(pair: str) -> str:
    base, quote = split_pair(pair)
    return next(k for k in ANCHORS if k not in (base, quote))


def _cov(a: Expr, b: Expr, w: int) -> Expr:
    """Population covariance over the last w rows, by polarisation of centred variances."""
    return (wvar(a + b, w, 0) - wvar(a - b, w, 0)) / 4.0


def leg_features(y: Expr, x: Expr, w: int) -> dict[str, Expr]:
    """The regression of y on x over the last w rows and its residual's dynamics. The lagged series'
    moments are the previous row's (var(y1) at t is var(y) at t - 1), and as dy + y1 = y,
    cov(dy, y1) = (var(y) - var(dy - y1)) / 4: fewer window variances, the same values."""
    vx, vy, cxy = wvar(x, w, 0), wvar(y, w, 0), _cov(x, y, w)
    beta = sdiv(cxy, vx)
    resid = (y - wmean(y, w)) - beta * (x - wmean(x, w))
    sse = positive(vy - beta * cxy) * float(w)
    y1, x1 = lag(y, 1), lag(x, 1)
    dy, dx = y - y1, x - x1
    cov_dy_y1, cov_dx_x1 = (vy - wvar(dy - y1, w, 0)) / 4.0, (vx - wvar(dx - x1, w, 0)) / 4.0
    cov_de_e1 = cov_dy_y1 - beta * _cov(dy, x1, w) - beta * _cov(dx, y1, w) + beta * beta * cov_dx_x1
    var_e1 = lag(vy, 1) - 2.0 * beta * lag(cxy, 1) + beta * beta * lag(vx, 1)
    phi = sdiv(cov_de_e1, var_e1)
    cap = 10.0 * w
    reverting = both(gt(phi, -1.0), gt(0.0, phi))
    return {
        "beta": beta, "r2": clip(sdiv(cxy * cxy, vx * vy), 0.0, 1.0), "resid": resid,
        "z": sdiv(resid, sqrt(sse / float(w - 2))), "velocity": dy - beta * dx, "phi": phi,
        "half_life": select(reverting, minimum(-float(np.log(2)) / log1p(phi), cap), cap),
    }


def table() -> dict[str, Expr]:
    y = series("y")
    legs = {1: series("leg1") * param("sign1"), 2: series("leg2") * param("sign2")}
    out: dict[str, Expr] = {}
    for j, x in legs.items():
        for w in WINDOWS:
            for f, v in leg_features(y, x, w).items():
                out[f"leg{j}_{f}{w}"] = v
    for w in WINDOWS:
        out[f"z_gap{w}"] = out[f"leg1_z{w}"] - out[f"leg2_z{w}"]
    return {k: out[k] for k in names()}


def kernel(s: Settings | None = None) -> Kernel:
    return compile_table(table(), PARAMS)


def bind(pair: str, pairs: tuple[str, ...]) -> PanelBinding:
    """The pair's log close and each leg's quoting pair (column -1 when the panel has neither A/K nor
    K/A: that leg's features are NaN), with the legs' signs."""
    base, quote = split_pair(pair)
    k = anchor_for(pair)
    columns: dict[str, tuple[str, int]] = {"y": ("logp", pairs.index(pair))}
    signs = []
    for j, cur in enumerate((base, quote), start=1):
        name, inverse = (cur + k).lower(), (k + cur).lower()
        col, sign = (pairs.index(name), 1.0) if name in pairs else \
            (pairs.index(inverse), -1.0) if inverse in pairs else (-1, 1.0)
        columns[f"leg{j}"] = ("logp", col)
        signs.append(sign)
    return PanelBinding(columns, tuple(signs))


def compute(panel: Panel, pair: str) -> dict[str, np.ndarray]:
    """Every feature of ``pair`` on every grid row of the panel."""
    return panel_batch(kernel(), bind(pair, panel.pairs), panel)


TABLES: dict[str, Family] = {"error_correction": from_panel_spec(kernel, bind)}
