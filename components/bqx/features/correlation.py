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
from numba import njit

from bqx.features import latest as lt
from bqx.features import primary
from bqx.features.family import Family, Online, on_pair_rows
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


# --- online: one grid row at a time (see bqx.serving.market) ---

def online_params(pair: str, pairs: tuple[str, ...]) -> tuple:
    """This pair's column and each pair's group: -1 itself, 0 shares the base, 1 the quote, 2 neither."""
    base, quote = split_pair(pair)
    groups = np.empty(len(pairs), dtype=np.int64)
    for k, other in enumerate(pairs):
        ob, oq = split_pair(other)
        groups[k] = -1 if other == pair else 0 if base in (ob, oq) else 1 if quote in (ob, oq) else 2
    return pairs.index(pair), groups


@njit(cache=True)
def online_step(k: int, series: np.ndarray, strength: np.ndarray, col: int, groups: np.ndarray,
                state: np.ndarray, out: np.ndarray) -> int:
    """Row k of the table for this pair: one backward pass accumulates the window sums of x against
    every currency strength and every pair, read off at each window length (the nested windows)."""
    n_cur, n_pairs = strength.shape[1], series.shape[1]
    sy, syy, sxy = np.zeros(n_cur + n_pairs), np.zeros(n_cur + n_pairs), np.zeros(n_cur + n_pairs)
    sx = sxx = 0.0
    corr = np.empty(n_cur + n_pairs)
    rows = 0
    out[:] = np.nan
    for wi in range(len(WINDOWS)):
        w = WINDOWS[wi]
        if k - w + 1 < 0:
            break
        while rows < w:
            i = k - rows
            x = series[i, col]
            sx += x
            sxx += x * x
            for c in range(n_cur + n_pairs):
                y = strength[i, c] if c < n_cur else series[i, c - n_cur]
                sy[c] += y
                syy[c] += y * y
                sxy[c] += x * y
            rows += 1
        vx = max(lt.comoment(sxx, sx, sx, w), 0.0)
        for c in range(n_cur + n_pairs):
            vy = max(lt.comoment(syy[c], sy[c], sy[c], w), 0.0)
            corr[c] = lt.clip_corr(lt.comoment(sxy[c], sx, sy[c], w), vx, vy)
        for c in range(n_cur):
            out[wi * n_cur + c] = corr[c]
        j = len(WINDOWS) * n_cur + wi * len(SUMMARY)
        for g in range(3):  # mean correlation per group (NaN for an empty group)
            total, count = 0.0, 0
            for p in range(n_pairs):
                if groups[p] == g:
                    total += corr[n_cur + p]
                    count += 1
            out[j + g] = total / count if count else np.nan
        others = 0
        total_abs, top, low, above, any_nan = 0.0, -np.inf, np.inf, 0.0, False
        for p in range(n_pairs):
            if groups[p] < 0:
                continue
            v = corr[n_cur + p]
            others += 1
            if np.isnan(v):
                any_nan = True
                continue
            total_abs += abs(v)
            top = max(top, abs(v))
            low = min(low, v)
            above += 1.0 if v > 0.5 else 0.0
        if others and not any_nan:
            out[j + 3], out[j + 4], out[j + 5], out[j + 6] = total_abs / others, top, low, above / others
        elif others:
            out[j + 6] = np.nan
    return 0


TABLES: dict[str, Family] = {
    "correlation_idx": Family(lambda s: names(),
                              lambda inp, s: on_pair_rows(inp, compute(inp.panel, inp.pair, "idx")),
                              lambda s: max(WINDOWS) + 1,
                              Online(("r", "g"), online_step, panel=True,
                                     pair_params=online_params)),
    "correlation_bqx": Family(lambda s: names(),
                              lambda inp, s: on_pair_rows(inp, compute(inp.panel, inp.pair, "bqx")),
                              lambda s: primary.primary_warmup(s) + max(WINDOWS) + 1,
                              Online(("dbqx", "gb"), online_step, panel=True,
                                     pair_params=online_params)),
}
