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
from numba import njit

from bqx.features import latest as lt
from bqx.features.family import Family, Online, on_pair_rows
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


# --- online: one grid row at a time (see bqx.serving.market) ---

def online_params(pair: str, pairs: tuple[str, ...]) -> tuple:
    """This pair's column and each leg's (column, sign), column -1 when the leg is not in the panel."""
    base, quote = split_pair(pair)
    k = anchor_for(pair)
    legs = np.zeros((2, 2))
    for j, cur in enumerate((base, quote)):
        name, inverse = (cur + k).lower(), (k + cur).lower()
        legs[j] = (pairs.index(name), 1.0) if name in pairs else (pairs.index(inverse), -1.0) \
            if inverse in pairs else (-1, 0.0)
    return pairs.index(pair), legs


@njit(cache=True)
def _cov(s: np.ndarray, a: int, b: int, ab: int, w: int) -> float:
    return lt.comoment(s[ab], s[a], s[b], w) / w


@njit(cache=True)
def online_step(k: int, logp: np.ndarray, col: int, legs: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    out[:] = np.nan
    n_fields = len(FIELDS)
    zs = np.full((2, len(WINDOWS)), np.nan)
    for j in range(2):
        leg_col, sign = int(legs[j, 0]), legs[j, 1]
        if leg_col < 0:
            continue
        cy, cx = logp[k, col], sign * logp[k, leg_col]  # centred on the current row (covariances do not move)
        # sums of x y dx dy x1 y1 | xx yy xy | dy.y1 dy.x1 dx.y1 dx.x1 y1.y1 y1.x1 x1.x1
        s = np.zeros(16)
        rows = 0
        for wi in range(len(WINDOWS)):
            w = WINDOWS[wi]
            if k - w + 1 < 0:
                break
            while rows < w:
                i = k - rows
                y, x = logp[i, col] - cy, sign * logp[i, leg_col] - cx
                if i >= 1:
                    y1, x1 = logp[i - 1, col] - cy, sign * logp[i - 1, leg_col] - cx
                else:  # the lagged series start one row later (their windows are NaN here)
                    y1 = x1 = np.nan
                dy, dx = y - y1, x - x1
                s[0] += x
                s[1] += y
                s[2] += dx
                s[3] += dy
                s[4] += x1
                s[5] += y1
                s[6] += x * x
                s[7] += y * y
                s[8] += x * y
                s[9] += dy * y1
                s[10] += dy * x1
                s[11] += dx * y1
                s[12] += dx * x1
                s[13] += y1 * y1
                s[14] += y1 * x1
                s[15] += x1 * x1
                rows += 1
            vx, vy, cxy = _cov(s, 0, 0, 6, w), _cov(s, 1, 1, 7, w), _cov(s, 0, 1, 8, w)
            beta = lt.sdiv(cxy, vx)
            alpha = s[1] / w - beta * s[0] / w
            resid = -alpha  # y - alpha - beta x at row k, where the centred x and y are 0
            sse = max(vy - beta * cxy, 0.0) * w
            cov_de_e1 = (_cov(s, 3, 5, 9, w) - beta * _cov(s, 3, 4, 10, w) - beta * _cov(s, 2, 5, 11, w)
                         + beta**2 * _cov(s, 2, 4, 12, w))
            var_e1 = _cov(s, 5, 5, 13, w) - 2 * beta * _cov(s, 5, 4, 14, w) + beta**2 * _cov(s, 4, 4, 15, w)
            phi = lt.sdiv(cov_de_e1, var_e1)
            if np.isnan(phi):
                hl = np.nan
            elif -1 < phi < 0:
                hl = min(-np.log(2) / np.log1p(phi), 10.0 * w)
            else:
                hl = 10.0 * w
            r2 = lt.sdiv(cxy * cxy, vx * vy)
            y0 = logp[k, col] - logp[k - 1, col] if k >= 1 else np.nan
            x0 = sign * (logp[k, leg_col] - logp[k - 1, leg_col]) if k >= 1 else np.nan
            at = (j * len(WINDOWS) + wi) * n_fields
            z = lt.sdiv(resid, np.sqrt(sse / (w - 2)))
            zs[j, wi] = z
            out[at], out[at + 1] = beta, min(max(r2, 0.0), 1.0) if np.isfinite(r2) else np.nan
            out[at + 2], out[at + 3], out[at + 4] = resid, z, y0 - beta * x0
            out[at + 5], out[at + 6] = phi, hl
    for wi in range(len(WINDOWS)):
        out[2 * len(WINDOWS) * n_fields + wi] = zs[0, wi] - zs[1, wi]
    return 0


TABLES: dict[str, Family] = {
    "error_correction": Family(lambda s: names(),
                               lambda inp, s: on_pair_rows(inp, compute(inp.panel, inp.pair)),
                               lambda s: max(WINDOWS) + 1,
                               Online(("logp",), online_step, panel=True,
                                      pair_params=online_params)),
}
