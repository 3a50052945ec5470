"""``correlation_idx`` / ``correlation_bqx``: this pair against the others, in returns or BQX changes (45 each).

x is this pair's one-row log return (idx) or BQX change (bqx) on the panel grid. For W in (60, 240,
1440): ``corr{W}_{cur}`` correlation of x with the strength of each of the 8 currencies (return or BQX
strength, :mod:`bqx.panel`); over the correlations with every other pair in the panel:
``mean_corr_base{W}`` (pairs sharing this pair's base currency), ``mean_corr_quote{W}`` (sharing the
quote), ``mean_corr_other{W}`` (sharing neither), ``mean_abs_corr{W}``, ``max_abs_corr{W}``,
``min_corr{W}`` and ``share_above_half{W}`` (share with correlation above 0.5). Groups with no pair in
the panel are NaN.
"""

from __future__ import annotations

import numpy as np

from bqx.features.rolling import fast_rolling_corr
from bqx.pairs import CURRENCIES, split_pair
from bqx.panel import Panel

WINDOWS: tuple[int, ...] = (60, 240, 1440)
SUMMARY: tuple[str, ...] = ("mean_corr_base", "mean_corr_quote", "mean_corr_other", "mean_abs_corr",
                            "max_abs_corr", "min_corr", "share_above_half")


def names() -> list[str]:
    return [f"corr{w}_{c.lower()}" for w in WINDOWS for c in CURRENCIES] + [f"{f}{w}" for w in WINDOWS
                                                                            for f in SUMMARY]


def _mean(stack: list[np.ndarray], n: int) -> np.ndarray:
    return np.mean(stack, axis=0) if stack else np.full(n, np.nan)


def compute(panel: Panel, pair: str, domain: str) -> dict[str, np.ndarray]:
    series = panel.r if domain == "idx" else panel.dbqx
    strength = panel.g if domain == "idx" else panel.gb
    n = len(panel.ts_ns)
    x = series[:, panel.col(pair)]
    base, quote = split_pair(pair)
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        for j, cur in enumerate(CURRENCIES):
            out[f"corr{w}_{cur.lower()}"] = fast_rolling_corr(x, strength[:, j], w)
        groups: dict[str, list[np.ndarray]] = {"base": [], "quote": [], "other": []}
        every = []
        for k, other in enumerate(panel.pairs):
            if other == pair:
                continue
            c = fast_rolling_corr(x, series[:, k], w)
            every.append(c)
            ob, oq = split_pair(other)
            key = "base" if base in (ob, oq) else "quote" if quote in (ob, oq) else "other"
            groups[key].append(c)
        for key in ("base", "quote", "other"):
            out[f"mean_corr_{key}{w}"] = _mean(groups[key], n)
        if every:
            stack = np.vstack(every)
            out[f"mean_abs_corr{w}"] = np.mean(np.abs(stack), axis=0)
            out[f"max_abs_corr{w}"] = np.max(np.abs(stack), axis=0)
            out[f"min_corr{w}"] = np.min(stack, axis=0)
            share = np.mean(stack > 0.5, axis=0)
            out[f"share_above_half{w}"] = np.where(np.isnan(stack).any(axis=0), np.nan, share)
        else:
            for f in ("mean_abs_corr", "max_abs_corr", "min_corr", "share_above_half"):
                out[f"{f}{w}"] = np.full(n, np.nan)
    return {k: out[k] for k in names()}
