"""``error_correction``: rolling cointegration of the pair with its two legs through an anchor (30 features).

Pair AB is the spread of its legs ln(A/K) and ln(B/K) through an anchor currency K (the first of USD,
EUR, JPY that is neither A nor B), so y = ln(A/B) is regressed, over trailing windows W in (240, 1440),
on each leg x alone: y = alpha + beta x + e (Engle-Granger style, rolling, causal). Per leg j (1 = A/K,
2 = B/K) and W: ``leg{j}_beta{W}``, ``leg{j}_r2{W}``, ``leg{j}_resid{W}`` (e at row t), ``leg{j}_z{W}`` (e_t over
the residual stdev), ``leg{j}_velocity{W}`` (e_t - e_{t-1} at the current beta), ``leg{j}_phi{W}`` (slope of
the residual's change on its lagged level in the window: negative = reverting) and
``leg{j}_half_life{W}`` = -ln 2 / ln(1 + phi) in rows, capped at 10 W when the spread does not revert
(phi >= 0). ``z_gap{W}`` = z of leg 1 minus z of leg 2. A leg missing from the panel gives NaN.
"""

from __future__ import annotations

import numpy as np

from bqx.features.rolling import fast_rolling_cov, fast_rolling_sum, safe_div, shift
from bqx.pairs import split_pair
from bqx.panel import Panel

WINDOWS: tuple[int, ...] = (240, 1440)
FIELDS: tuple[str, ...] = ("beta", "r2", "resid", "z", "velocity", "phi", "half_life")
ANCHORS: tuple[str, ...] = ("USD", "EUR", "JPY")


def names() -> list[str]:
    return [f"leg{j}_{f}{w}" for j in (1, 2) for w in WINDOWS for f in FIELDS] + [f"z_gap{w}" for w in WINDOWS]


def anchor_for(pair: str) -> str:
    base, quote = split_pair(pair)
    return next(k for k in ANCHORS if k not in (base, quote))


def _centre(x: np.ndarray) -> np.ndarray:
    finite = np.flatnonzero(np.isfinite(x))
    return x - (x[finite[0]] if finite.size else 0.0)


def leg_features(y: np.ndarray, x: np.ndarray, w: int) -> dict[str, np.ndarray]:
    y, x = _centre(y), _centre(x)
    vx, vy, cxy = fast_rolling_cov(x, x, w), fast_rolling_cov(y, y, w), fast_rolling_cov(x, y, w)
    beta = safe_div(cxy, vx)
    alpha = fast_rolling_sum(y, w) / w - beta * fast_rolling_sum(x, w) / w
    resid = y - alpha - beta * x
    sse = np.maximum(vy - beta * cxy, 0.0) * w
    dy, dx, y1, x1 = y - shift(y, 1), x - shift(x, 1), shift(y, 1), shift(x, 1)
    cov = fast_rolling_cov
    cov_de_e1 = cov(dy, y1, w) - beta * cov(dy, x1, w) - beta * cov(dx, y1, w) + beta**2 * cov(dx, x1, w)
    var_e1 = cov(y1, y1, w) - 2 * beta * cov(y1, x1, w) + beta**2 * cov(x1, x1, w)
    phi = safe_div(cov_de_e1, var_e1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = np.where((phi > -1) & (phi < 0), -np.log(2) / np.log1p(phi), 10.0 * w)
    hl = np.where(np.isnan(phi), np.nan, np.minimum(hl, 10.0 * w))
    return {
        "beta": beta, "r2": np.clip(safe_div(cxy * cxy, vx * vy), 0.0, 1.0), "resid": resid,
        "z": safe_div(resid, np.sqrt(sse / (w - 2))), "velocity": dy - beta * dx, "phi": phi, "half_life": hl,
    }


def compute(panel: Panel, pair: str) -> dict[str, np.ndarray]:
    base, quote = split_pair(pair)
    k = anchor_for(pair)
    y = panel.logp[:, panel.col(pair)]
    legs = {1: panel.log_cross(base, k), 2: panel.log_cross(quote, k)}
    out: dict[str, np.ndarray] = {}
    for j, x in legs.items():
        for w in WINDOWS:
            for f, v in leg_features(y, x, w).items():
                out[f"leg{j}_{f}{w}"] = v
    for w in WINDOWS:
        out[f"z_gap{w}"] = out[f"leg1_z{w}"] - out[f"leg2_z{w}"]
    return {k2: out[k2] for k2 in names()}
