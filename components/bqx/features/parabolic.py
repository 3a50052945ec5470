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
from numba import njit

from bqx.features import primary, reg
from bqx.features.family import Family, Online

DOMAIN_FIELDS: tuple[str, ...] = ("quad_norm_diff", "lin_norm_diff", "r2_diff", "resid_norm_diff", "curv_agree",
                                  "slope_agree", "quad_norm_prod", "lin_norm_prod", "r2_min", "r2_max",
                                  "resid_norm_sum")
WINDOW_FIELDS: tuple[str, ...] = DOMAIN_FIELDS[:6]


def names(windows: tuple[int, ...]) -> list[str]:
    out = [f"w{w}_{f}" for w in windows for f in DOMAIN_FIELDS]
    pairs = list(zip(windows[:-1], windows[1:], strict=True))
    out += [f"{d}_w{a}_w{b}_{f}" for d in ("idx", "bqx") for a, b in pairs for f in WINDOW_FIELDS]
    return out


def _compare(p: dict[str, np.ndarray], q: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "quad_norm_diff": p["quad_norm"] - q["quad_norm"], "lin_norm_diff": p["lin_norm"] - q["lin_norm"],
        "r2_diff": p["r2"] - q["r2"], "resid_norm_diff": p["resid_norm"] - q["resid_norm"],
        "curv_agree": np.sign(p["a_coef"]) * np.sign(q["a_coef"]),
        "slope_agree": np.sign(p["b_coef"]) * np.sign(q["b_coef"]),
    }


def compute(idx: np.ndarray, bqx: np.ndarray, windows: tuple[int, ...]) -> dict[str, np.ndarray]:
    fits = {"idx": {w: reg.fit_window(idx, w) for w in windows}, "bqx": {w: reg.fit_window(bqx, w) for w in windows}}
    out: dict[str, np.ndarray] = {}
    for w in windows:
        a, b = fits["idx"][w], fits["bqx"][w]
        for f, v in _compare(a, b).items():
            out[f"w{w}_{f}"] = v
        out[f"w{w}_quad_norm_prod"] = a["quad_norm"] * b["quad_norm"]
        out[f"w{w}_lin_norm_prod"] = a["lin_norm"] * b["lin_norm"]
        out[f"w{w}_r2_min"] = np.minimum(a["r2"], b["r2"])
        out[f"w{w}_r2_max"] = np.maximum(a["r2"], b["r2"])
        out[f"w{w}_resid_norm_sum"] = a["resid_norm"] + b["resid_norm"]
    for d in ("idx", "bqx"):
        for w1, w2 in zip(windows[:-1], windows[1:], strict=True):
            for f, v in _compare(fits[d][w1], fits[d][w2]).items():
                out[f"{d}_w{w1}_w{w2}_{f}"] = v
    return {k: out[k] for k in names(windows)}


# --- online: one row at a time (see bqx.features.latest) ---
A, B, R2, QN, LN, RN = 0, 1, 5, 8, 9, 11  # positions of the fit fields used here in reg.FIELDS


@njit(cache=True)
def _compare_at(p: np.ndarray, q: np.ndarray, out: np.ndarray, j: int) -> None:
    out[j] = p[QN] - q[QN]
    out[j + 1] = p[LN] - q[LN]
    out[j + 2] = p[R2] - q[R2]
    out[j + 3] = p[RN] - q[RN]
    out[j + 4] = np.sign(p[A]) * np.sign(q[A])
    out[j + 5] = np.sign(p[B]) * np.sign(q[B])


@njit(cache=True)
def online_step(t: int, idx: np.ndarray, bqx: np.ndarray, windows: np.ndarray, state: np.ndarray,
                out: np.ndarray) -> int:
    n = len(windows)
    fits = np.empty((2, n, 12))
    for i in range(n):
        reg.fit_at(idx, t, windows[i], fits[0, i], 0)
        reg.fit_at(bqx, t, windows[i], fits[1, i], 0)
    j = 0
    for i in range(n):
        a, b = fits[0, i], fits[1, i]
        _compare_at(a, b, out, j)
        out[j + 6] = a[QN] * b[QN]
        out[j + 7] = a[LN] * b[LN]
        out[j + 8] = min(a[R2], b[R2]) if not (np.isnan(a[R2]) or np.isnan(b[R2])) else np.nan
        out[j + 9] = max(a[R2], b[R2]) if not (np.isnan(a[R2]) or np.isnan(b[R2])) else np.nan
        out[j + 10] = a[RN] + b[RN]
        j += 11
    for d in range(2):
        for i in range(n - 1):
            _compare_at(fits[d, i], fits[d, i + 1], out, j)
            j += 6
    return 0


TABLES: dict[str, Family] = {
    "parabolic": Family(lambda s: names(s.features.reg_windows),
                        lambda inp, s: compute(inp.idx, inp.bqx, s.features.reg_windows),
                        lambda s: primary.primary_warmup(s) + reg.warmup(s.features.reg_windows),
                        Online(("idx", "bqx"), online_step,
                               lambda s: reg.online_params(s.features.reg_windows))),
}
