"""``parabolic``: REG fits compared across domains and windows (126 features).

From the rate_idx and BQX quadratic fits of :mod:`bqx.features.reg` at the six REG windows:

- per window W (66): ``w{W}_quad_norm_diff``, ``_lin_norm_diff``, ``_r2_diff``, ``_resid_norm_diff``
  (idx minus bqx), ``_curv_agree`` / ``_slope_agree`` (sign(a_idx) sign(a_bqx), likewise for b),
  ``_quad_norm_prod``, ``_lin_norm_prod``, ``_r2_min``, ``_r2_max``, ``_resid_norm_sum``;
- per domain and consecutive window pair (W1, W2) (60): ``{idx|bqx}_w{W1}_w{W2}_`` + ``quad_norm_diff``,
  ``lin_norm_diff``, ``r2_diff``, ``resid_norm_diff`` (short minus long), ``curv_agree``, ``slope_agree``.
"""

from __future__ import annotations

import numpy as np

from bqx.features import reg
from bqx.features.family import from_spec
from bqx.features.spec import Expr, Table, compile_table, maximum, minimum, series, sign

DOMAIN_FIELDS: tuple[str, ...] = ("quad_norm_diff", "lin_norm_diff", "r2_diff", "resid_norm_diff", "curv_agree",
                                  "slope_agree", "quad_norm_prod", "lin_norm_prod", "r2_min", "r2_max",
                                  "resid_norm_sum")
WINDOW_FIELDS: tuple[str, ...] = DOMAIN_FIELDS[:6]


def _compare(p: dict[str, Expr], q: dict[str, Expr]) -> dict[str, Expr]:
    return {
        "quad_norm_diff": p["quad_norm"] - q["quad_norm"], "lin_norm_diff": p["lin_norm"] - q["lin_norm"],
        "r2_diff": p["r2"] - q["r2"], "resid_norm_diff": p["resid_norm"] - q["resid_norm"],
        "curv_agree": sign(p["a_coef"]) * sign(q["a_coef"]), "slope_agree": sign(p["b_coef"]) * sign(q["b_coef"]),
    }


def table(idx: Expr, bqx: Expr, windows: tuple[int, ...]) -> Table:
    fits = {"idx": {w: reg.fit(idx, w) for w in windows}, "bqx": {w: reg.fit(bqx, w) for w in windows}}
    t: Table = {}
    for w in windows:
        a, b = fits["idx"][w], fits["bqx"][w]
        for f, v in _compare(a, b).items():
            t[f"w{w}_{f}"] = v
        t[f"w{w}_quad_norm_prod"] = a["quad_norm"] * b["quad_norm"]
        t[f"w{w}_lin_norm_prod"] = a["lin_norm"] * b["lin_norm"]
        t[f"w{w}_r2_min"], t[f"w{w}_r2_max"] = minimum(a["r2"], b["r2"]), maximum(a["r2"], b["r2"])
        t[f"w{w}_resid_norm_sum"] = a["resid_norm"] + b["resid_norm"]
    for d in ("idx", "bqx"):
        for w1, w2 in zip(windows[:-1], windows[1:], strict=True):
            for f, v in _compare(fits[d][w1], fits[d][w2]).items():
                t[f"{d}_w{w1}_w{w2}_{f}"] = v
    return t


TABLES = {"parabolic": from_spec(lambda s: table(series("idx"), series("bqx"), s.features.reg_windows))}


def names(windows: tuple[int, ...]) -> list[str]:
    return list(table(series("idx"), series("bqx"), tuple(windows)))


def compute(idx: np.ndarray, bqx: np.ndarray, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    return compile_table(table(series("idx"), series("bqx"), tuple(windows))).batch({"idx": idx, "bqx": bqx})
