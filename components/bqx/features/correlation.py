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

from bqx.config import Settings
from bqx.features import latest as lt
from bqx.features import primary
from bqx.features.family import Family, Online, on_pair_rows
from bqx.pairs import CURRENCIES, PAIRS, split_pair
from bqx.panel import Panel

WINDOWS: tuple[int, ...] = (60, 240, 1440)
SUMMARY: tuple[str, ...] = ("mean_corr_base", "mean_corr_quote", "mean_corr_other", "mean_abs_corr",
                            "max_abs_corr", "min_corr", "share_above_half")


def names() -> list[str]:
    return [f"corr{w}_{c.lower()}" for w in WINDOWS for c in CURRENCIES] + [f"{f}{w}" for w in WINDOWS
                                                                            for f in SUMMARY]


def compute(panel: Panel, pair: str, domain: str) -> dict[str, np.ndarray]:
    """The table on the panel grid: one pass per window keeps the window sums of x against every
    currency strength and every pair (exact refresh every W rows), through the same functions, in the
    same order, as the online step."""
    series = np.ascontiguousarray(panel.r if domain == "idx" else panel.dbqx, dtype=np.float64)
    strength = np.ascontiguousarray(panel.g if domain == "idx" else panel.gb, dtype=np.float64)
    col, groups = online_params(pair, tuple(panel.pairs))
    out = tuple(np.empty(len(panel.ts_ns)) for _ in names())  # every row of every column is written
    _batch(series, strength, col, groups, out)
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


# A window's sums: ``xs`` for x (sum, sum of squares, count of non-zero terms, count of non-finite ones),
# ``ys`` one column per y column, rows: sum, sum of squares, sum of x*y, count of non-finite terms, count
# of non-zero y, count of non-zero x*y.
X_SUMS, Y_SUMS = 4, 6
MAX_COLUMNS = len(CURRENCIES) + len(PAIRS)  # the online state's y columns: 8 strengths and up to 28 pairs
BLOCK = 1 + X_SUMS + Y_SUMS * MAX_COLUMNS  # one window's online state: rows pushed, then its sums


@njit(cache=True, inline="always")
def _push_y(sign: float, x: float, y: float, ys: np.ndarray, c: int) -> None:
    if np.isfinite(y):
        ys[0, c] += sign * y
        ys[1, c] += sign * y * y
        ys[2, c] += sign * x * y
        ys[4, c] += sign * (y != 0.0)
        ys[5, c] += sign * (x * y != 0.0)
    else:
        ys[3, c] += sign


@njit(cache=True, inline="always")
def _push(sign: float, i: int, col: int, series: np.ndarray, strength: np.ndarray, xs: np.ndarray,
          ys: np.ndarray) -> None:
    """Add (``sign`` 1) or remove (-1) grid row i's terms: x is this pair's column of ``series``, the y
    columns are the currency strengths, then every pair. A non-finite term is counted, not summed."""
    x = series[i, col]
    if np.isfinite(x):
        xs[0] += sign * x
        xs[1] += sign * x * x
        xs[2] += sign * (x != 0.0)
    else:
        xs[3] += sign
        x = 0.0
    n_cur = strength.shape[1]
    for c in range(n_cur):
        _push_y(sign, x, strength[i, c], ys, c)
    for p in range(series.shape[1]):
        _push_y(sign, x, series[i, p], ys, n_cur + p)


@njit(cache=True, inline="always")
def _add_y(x: float, y: float, ys: np.ndarray, c: int) -> None:
    if np.isfinite(y):
        ys[0, c] += y
        ys[1, c] += y * y
        ys[2, c] += x * y


@njit(cache=True)
def _refresh(t: int, w: int, col: int, series: np.ndarray, strength: np.ndarray, xs: np.ndarray,
             ys: np.ndarray) -> None:
    """The window's sums recomputed exactly over rows t - w + 1 .. t, so rounding cannot drift (the
    counts are exact already)."""
    n_cur = strength.shape[1]
    m = n_cur + series.shape[1]
    xs[0] = xs[1] = 0.0
    ys[:3, :m] = 0.0
    for i in range(t - w + 1, t + 1):
        x = series[i, col] if np.isfinite(series[i, col]) else 0.0
        xs[0] += x
        xs[1] += x * x
        for c in range(n_cur):
            _add_y(x, strength[i, c], ys, c)
        for p in range(m - n_cur):
            _add_y(x, series[i, p], ys, n_cur + p)


@njit(cache=True, inline="always")
def _read(wi: int, w: int, m: int, xs: np.ndarray, ys: np.ndarray, n_cur: int, groups: np.ndarray,
          work: np.ndarray, out: np.ndarray) -> None:
    """Window ``wi``'s features into ``out`` from its sums: NaN sums for a column whose window holds a
    non-finite value, and a sum whose terms are all zero (a stale quote) read as exactly 0. ``work``: 4 x m
    scratch."""
    ty, tyy, txy, corr = work[0], work[1], work[2], work[3]
    vx, vxx = (xs[0], xs[1]) if xs[2] != 0.0 else (0.0, 0.0)
    for c in range(m):
        if xs[3] == 0.0 and ys[3, c] == 0.0:
            ty[c], tyy[c] = (ys[0, c], ys[1, c]) if ys[4, c] != 0.0 else (0.0, 0.0)
            txy[c] = ys[2, c] if ys[5, c] != 0.0 else 0.0
        else:
            ty[c], tyy[c], txy[c] = np.nan, np.nan, np.nan
    _window_features(wi, w, vx, vxx, ty, tyy, txy, n_cur, groups, corr, out)


CHUNK = 1024  # grid rows the batch gathers row-wise before moving them into their columns


@njit(cache=True)
def _flush(buf: np.ndarray, rows: int, t0: int, lo: int, hi: int, out: tuple) -> None:
    """Columns lo..hi - 1 of ``rows`` buffered rows into their columns from row t0 on."""
    for j in range(lo, hi):
        column = out[j]
        for i in range(rows):
            column[t0 + i] = buf[i, j]


@njit(cache=True)
def _batch(series: np.ndarray, strength: np.ndarray, col: int, groups: np.ndarray, out: tuple) -> None:
    """Every grid row, window by window: running sums pushed and popped one row at a time, recomputed
    exactly every W rows; the same functions, in the same order, as the online step. Rows are gathered
    in a small row-wise buffer and moved into the (one array per feature) columns a chunk at a time,
    not scattered over 15 columns a row."""
    n, n_cur = series.shape[0], strength.shape[1]
    m = n_cur + series.shape[1]
    work = np.empty((4, m))
    xs, ys = np.zeros(X_SUMS), np.zeros((Y_SUMS, m))
    buf = np.empty((CHUNK, len(out)))
    for wi in range(len(WINDOWS)):
        w = WINDOWS[wi]
        j0 = len(WINDOWS) * n_cur + wi * len(SUMMARY)
        xs[:], ys[:] = 0.0, 0.0
        for t in range(n):
            i = t % CHUNK
            _push(1.0, t, col, series, strength, xs, ys)
            if t - w >= 0:
                _push(-1.0, t - w, col, series, strength, xs, ys)
            if t < w - 1:
                buf[i, :] = np.nan
            else:
                if (t + 1) % w == 0:
                    _refresh(t, w, col, series, strength, xs, ys)
                _read(wi, w, m, xs, ys, n_cur, groups, work, buf[i])
            if i == CHUNK - 1 or t == n - 1:
                _flush(buf, i + 1, t - i, wi * n_cur, (wi + 1) * n_cur, out)
                _flush(buf, i + 1, t - i, j0, j0 + len(SUMMARY), out)


# --- online: one grid row at a time, every grid row (see bqx.serving.market) ---

def online_state_size(settings: Settings) -> int:
    """Each window's rows pushed and sums, for up to 28 pairs."""
    return len(WINDOWS) * BLOCK


@njit(cache=True)
def online_step(k: int, series: np.ndarray, strength: np.ndarray, col: int, groups: np.ndarray,
                state: np.ndarray, out: np.ndarray) -> int:
    """Grid row k of the table for this pair: row k pushed into each window's sums and row k - W popped
    (the market keeps more rows than the longest window), as :func:`_batch` does row by row."""
    n_cur = strength.shape[1]
    m = n_cur + series.shape[1]
    work = np.empty((4, m))
    out[:] = np.nan
    for wi in range(len(WINDOWS)):
        w = WINDOWS[wi]
        base = wi * BLOCK
        xs = state[base + 1:base + 1 + X_SUMS]
        ys = state[base + 1 + X_SUMS:base + BLOCK].reshape((Y_SUMS, MAX_COLUMNS))
        pushed = state[base]
        _push(1.0, k, col, series, strength, xs, ys)
        if pushed >= w:
            _push(-1.0, k - w, col, series, strength, xs, ys)
        pushed += 1.0
        state[base] = pushed
        if pushed < w:
            continue
        if pushed % w == 0.0:
            _refresh(k, w, col, series, strength, xs, ys)
        _read(wi, w, m, xs, ys, n_cur, groups, work, out)
    return len(WINDOWS) * BLOCK


TABLES: dict[str, Family] = {
    "correlation_idx": Family(lambda s: names(),
                              lambda inp, s: on_pair_rows(inp, compute(inp.panel, inp.pair, "idx")),
                              lambda s: max(WINDOWS) + 1,
                              Online(("r", "g"), online_step, panel=True, state_size=online_state_size,
                                     pair_params=online_params)),
    "correlation_bqx": Family(lambda s: names(),
                              lambda inp, s: on_pair_rows(inp, compute(inp.panel, inp.pair, "bqx")),
                              lambda s: primary.primary_warmup(s) + max(WINDOWS) + 1,
                              Online(("dbqx", "gb"), online_step, panel=True, state_size=online_state_size,
                                     pair_params=online_params)),
}
