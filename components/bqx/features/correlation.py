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
from bqx.pairs import CURRENCIES, split_pair
from bqx.panel import Panel

WINDOWS: tuple[int, ...] = (60, 240, 1440)
SUMMARY: tuple[str, ...] = ("mean_corr_base", "mean_corr_quote", "mean_corr_other", "mean_abs_corr",
                            "max_abs_corr", "min_corr", "share_above_half")


def names() -> list[str]:
    return [f"corr{w}_{c.lower()}" for w in WINDOWS for c in CURRENCIES] + [f"{f}{w}" for w in WINDOWS
                                                                            for f in SUMMARY]


def compute(panel: Panel, pair: str, domain: str) -> dict[str, np.ndarray]:
    """The table on the panel grid: one pass per window keeps the window sums of x against every
    currency strength and every pair (exact refresh every W rows) and writes each row through the same
    function the online step uses (:func:`_window_features`)."""
    series = np.ascontiguousarray(panel.r if domain == "idx" else panel.dbqx, dtype=np.float64)
    strength = np.ascontiguousarray(panel.g if domain == "idx" else panel.gb, dtype=np.float64)
    col, groups = online_params(pair, tuple(panel.pairs))
    out = np.full((len(names()), len(panel.ts_ns)), np.nan)
    _batch(series[:, col].copy(), np.hstack([strength, series]), strength.shape[1], groups, out)
    return dict(zip(names(), out, strict=True))


def online_params(pair: str, pairs: tuple[str, ...]) -> tuple:
    """This pair's column and each pair's group: -1 itself, 0 shares the base, 1 the quote, 2 neither."""
    base, quote = split_pair(pair)
    groups = np.empty(len(pairs), dtype=np.int64)
    for k, other in enumerate(pairs):
        ob, oq = split_pair(other)
        groups[k] = -1 if other == pair else 0 if base in (ob, oq) else 1 if quote in (ob, oq) else 2
    return pairs.index(pair), groups


@njit(cache=True)
def _window_features(wi: int, w: int, sx: float, sxx: float, sy: np.ndarray, syy: np.ndarray, sxy: np.ndarray,
                     n_cur: int, groups: np.ndarray, corr: np.ndarray, out: np.ndarray) -> None:
    """Window ``wi``'s features from its sums (x = this pair; columns = the currencies' strengths, then
    every pair; a NaN sum for a window holding a NaN): the correlations with each currency, the mean
    correlation per group (NaN for an empty group) and, over the other pairs, mean |corr|, max |corr|,
    min corr and the share above 0.5 (NaN if any is NaN). ``out`` is the row, in name order."""
    n_pairs = len(groups)
    vx = max(lt.comoment(sxx, sx, sx, w), 0.0)
    for c in range(n_cur + n_pairs):
        vy = max(lt.comoment(syy[c], sy[c], sy[c], w), 0.0)
        corr[c] = lt.clip_corr(lt.comoment(sxy[c], sx, sy[c], w), vx, vy)
    for c in range(n_cur):
        out[wi * n_cur + c] = corr[c]
    j = len(WINDOWS) * n_cur + wi * len(SUMMARY)
    for g in range(3):
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
    else:
        out[j + 3] = out[j + 4] = out[j + 5] = out[j + 6] = np.nan


@njit(cache=True)
def _column(i: int, c: int, n_cur: int, series: np.ndarray, strength: np.ndarray) -> float:
    return strength[i, c] if c < n_cur else series[i, c - n_cur]


@njit(cache=True)
def _batch(xs: np.ndarray, ys: np.ndarray, n_cur: int, groups: np.ndarray, out: np.ndarray) -> None:
    """Every grid row, window by window: running sums of x (``xs``) against each column of ``ys`` (the
    currency strengths, then every pair) over the finite values, with a count of non-finite ones per
    column, recomputed exactly every W rows so rounding cannot drift. A sum whose terms in the window
    are all zero (a stale quote) is read as exactly 0, as the online step's fresh sum is."""
    n, m = ys.shape
    corr, row = np.empty(m), np.empty(out.shape[0])
    sy, syy, sxy, bad = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    nz_y, nz_xy = np.zeros(m), np.zeros(m)
    ty, tyy, txy = np.empty(m), np.empty(m), np.empty(m)
    for wi in range(len(WINDOWS)):
        w = WINDOWS[wi]
        sx = sxx = 0.0
        bad_x = 0
        nz_x = 0.0
        sy[:], syy[:], sxy[:], bad[:], nz_y[:], nz_xy[:] = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        for t in range(n):
            for sign, i in ((1.0, t), (-1.0, t - w)):
                if i < 0:
                    continue
                x = xs[i]
                x_ok = np.isfinite(x)
                if x_ok:
                    sx += sign * x
                    sxx += sign * x * x
                    nz_x += sign * (x != 0.0)
                else:
                    bad_x += int(sign)
                    x = 0.0
                for c in range(m):
                    y = ys[i, c]
                    if np.isfinite(y):
                        sy[c] += sign * y
                        syy[c] += sign * y * y
                        sxy[c] += sign * x * y
                        nz_y[c] += sign * (y != 0.0)
                        nz_xy[c] += sign * (x * y != 0.0)
                    else:
                        bad[c] += sign
            if t < w - 1:
                continue
            if (t + 1) % w == 0:  # exact sums of the window t - w + 1 .. t
                sx = sxx = 0.0
                sy[:], syy[:], sxy[:] = 0.0, 0.0, 0.0
                for i in range(t - w + 1, t + 1):
                    x = xs[i] if np.isfinite(xs[i]) else 0.0
                    sx += x
                    sxx += x * x
                    for c in range(m):
                        y = ys[i, c]
                        if np.isfinite(y):
                            sy[c] += y
                            syy[c] += y * y
                            sxy[c] += x * y
            vx, vxx = (sx, sxx) if nz_x else (0.0, 0.0)
            for c in range(m):  # a window holding a non-finite value: NaN sums, NaN correlation
                if bad_x == 0 and bad[c] == 0:
                    ty[c], tyy[c] = (sy[c], syy[c]) if nz_y[c] else (0.0, 0.0)
                    txy[c] = sxy[c] if nz_xy[c] else 0.0
                else:
                    ty[c], tyy[c], txy[c] = np.nan, np.nan, np.nan
            _window_features(wi, w, vx, vxx, ty, tyy, txy, n_cur, groups, corr, row)
            for j in range(wi * n_cur, (wi + 1) * n_cur):
                out[j, t] = row[j]
            j0 = len(WINDOWS) * n_cur + wi * len(SUMMARY)
            for j in range(j0, j0 + len(SUMMARY)):
                out[j, t] = row[j]


# --- online: one grid row at a time (see bqx.serving.market) ---

@njit(cache=True)
def online_step(k: int, series: np.ndarray, strength: np.ndarray, col: int, groups: np.ndarray,
                state: np.ndarray, out: np.ndarray) -> int:
    """Row k of the table for this pair: one backward pass accumulates the window sums of x against
    every currency strength and every pair, read off at each window length (the nested windows)."""
    n_cur = strength.shape[1]
    m = n_cur + series.shape[1]
    sy, syy, sxy = np.zeros(m), np.zeros(m), np.zeros(m)
    sx = sxx = 0.0
    corr = np.empty(m)
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
            for c in range(m):
                y = _column(i, c, n_cur, series, strength)
                sy[c] += y
                syy[c] += y * y
                sxy[c] += x * y
            rows += 1
        _window_features(wi, w, sx, sxx, sy, syy, sxy, n_cur, groups, corr, out)
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
