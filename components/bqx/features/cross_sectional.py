"""``cross_sectional_panel``: the market across pairs, the same for every pair (35 features).

``g60_{cur}`` and ``g240_{cur}``: each currency's strength summed over 60 / 240 rows (bps);
``rank240_{cur}``: its rank by ``g240`` (1 = strongest); ``disp1 disp60 disp240``: the cross-sectional
stdev of the pairs' returns over 1 / 60 / 240 rows; ``mean_abs_ret60``: the mean absolute 60-row
return across pairs; ``tri_{a}{b}{c}`` residuals of six named triangles and ``tri_mean_abs``, the mean
absolute residual over every triangle whose three legs are in the panel (bps; nonzero only where
quotes are asynchronous or stale).
"""

from __future__ import annotations

import numpy as np

from bqx.features.rolling import fast_rolling_sum
from bqx.pairs import CURRENCIES
from bqx.panel import NAMED_TRIANGLES, Panel, all_triangles


def _tri_name(t: tuple[str, str, str]) -> str:
    return "tri_" + "".join(c.lower() for c in t)


def names() -> list[str]:
    cur = [c.lower() for c in CURRENCIES]
    return ([f"g60_{c}" for c in cur] + [f"g240_{c}" for c in cur] + [f"rank240_{c}" for c in cur]
            + ["disp1", "disp60", "disp240", "mean_abs_ret60"] + [_tri_name(t) for t in NAMED_TRIANGLES]
            + ["tri_mean_abs"])


def compute(panel: Panel) -> dict[str, np.ndarray]:
    n = len(panel.ts_ns)
    out: dict[str, np.ndarray] = {}
    g240 = np.full((n, len(CURRENCIES)), np.nan)
    for j, cur in enumerate(CURRENCIES):
        out[f"g60_{cur.lower()}"] = fast_rolling_sum(panel.g[:, j], 60)
        g240[:, j] = fast_rolling_sum(panel.g[:, j], 240)
        out[f"g240_{cur.lower()}"] = g240[:, j]
    finite = np.isfinite(g240)
    order = np.argsort(np.argsort(-np.where(finite, g240, -np.inf), axis=1), axis=1) + 1.0
    order[~finite] = np.nan
    for j, cur in enumerate(CURRENCIES):
        out[f"rank240_{cur.lower()}"] = order[:, j]
    cum = {w: np.column_stack([fast_rolling_sum(panel.r[:, k], w) for k in range(len(panel.pairs))])
           for w in (60, 240)}
    several = len(panel.pairs) > 1
    out["disp1"] = np.std(panel.r, axis=1, ddof=1) if several else np.full(n, np.nan)
    out["disp60"] = np.std(cum[60], axis=1, ddof=1) if several else np.full(n, np.nan)
    out["disp240"] = np.std(cum[240], axis=1, ddof=1) if several else np.full(n, np.nan)
    out["mean_abs_ret60"] = np.mean(np.abs(cum[60]), axis=1)
    for t in NAMED_TRIANGLES:
        out[_tri_name(t)] = panel.triangle(*t)
    resid = [np.abs(panel.triangle(*t)) for t in all_triangles()]
    present = [x for x in resid if np.isfinite(x).any()]
    out["tri_mean_abs"] = np.mean(present, axis=0) if present else np.full(n, np.nan)
    return {k: out[k] for k in names()}
