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
from numba import njit

from bqx.features.family import Family, Online, on_pair_rows
from bqx.features.incremental import rank_of
from bqx.features.rolling import fast_rolling_sum, rolling_sum_into
from bqx.pairs import CURRENCIES
from bqx.panel import NAMED_TRIANGLES, Panel, all_triangles


def _tri_name(t: tuple[str, str, str]) -> str:
    return "tri_" + "".join(c.lower() for c in t)


def names() -> list[str]:
    cur = [c.lower() for c in CURRENCIES]
    return ([f"g60_{c}" for c in cur] + [f"g240_{c}" for c in cur] + [f"rank240_{c}" for c in cur]
            + ["disp1", "disp60", "disp240", "mean_abs_ret60"] + [_tri_name(t) for t in NAMED_TRIANGLES]
            + ["tri_mean_abs"])


ROW_FEATURES = 4 + len(NAMED_TRIANGLES) + 1  # disp1 disp60 disp240 mean_abs_ret60, the named triangles, tri_mean_abs


def compute(panel: Panel) -> dict[str, np.ndarray]:
    """The table on the panel grid: the currencies' window sums column by column (:func:`rolling_sum_into`),
    then one compiled pass over the rows for what reads across pairs, through the online step's own
    functions."""
    n = len(panel.ts_ns)
    out: dict[str, np.ndarray] = {}
    g240 = np.empty((n, len(CURRENCIES)))
    for j, cur in enumerate(CURRENCIES):
        out[f"g60_{cur.lower()}"] = fast_rolling_sum(panel.g[:, j], 60)
        rolling_sum_into(panel.g[:, j], 240, g240[:, j])
        out[f"g240_{cur.lower()}"] = g240[:, j]
    order = rank_rows(g240)
    for j, cur in enumerate(CURRENCIES):
        out[f"rank240_{cur.lower()}"] = order[:, j]
    cols, signs, named = online_params(panel.pairs[0], tuple(panel.pairs))
    rows = tuple(np.empty(n) for _ in range(ROW_FEATURES))
    _row_features(panel.r, panel.logp, cols, signs, named, rows)
    row_names = ["disp1", "disp60", "disp240", "mean_abs_ret60"] + [_tri_name(t) for t in NAMED_TRIANGLES]
    out.update(zip([*row_names, "tri_mean_abs"], rows, strict=True))
    return {k: out[k] for k in names()}


@njit(cache=True)
def _row_features(r: np.ndarray, logp: np.ndarray, cols: np.ndarray, signs: np.ndarray, named: int,
                  out: tuple) -> None:
    """Per grid row, what reads across pairs (see :data:`ROW_FEATURES`), as the online step computes it.
    The pairs' 60- and 240-row return sums are :func:`bqx.features.rolling.fast_rolling_sum`'s, bit for
    bit (running sums of the finite values and their counts, differenced), with the last 241 running
    sums kept in a ring rather than two (rows x pairs) blocks."""
    n, n_pairs = r.shape
    span = 241
    cs, cnt = np.zeros((span, n_pairs)), np.zeros((span, n_pairs), dtype=np.int64)  # slot (t % span): after t rows
    run, seen = np.zeros(n_pairs), np.zeros(n_pairs, dtype=np.int64)
    c60, c240 = np.empty(n_pairs), np.empty(n_pairs)
    several = n_pairs > 1
    for k in range(n):
        for p in range(n_pairs):
            v = r[k, p]
            ok = np.isfinite(v)
            run[p] = run[p] + (v if ok else 0.0)
            seen[p] += 1 if ok else 0
        slot = (k + 1) % span
        cs[slot], cnt[slot] = run, seen
        for w, sums in ((60, c60), (240, c240)):
            lo = k + 1 - w
            for p in range(n_pairs):
                sums[p] = run[p] - cs[lo % span, p] if lo >= 0 and seen[p] - cnt[lo % span, p] == w else np.nan
        out[0][k] = _std1(r[k]) if several else np.nan
        out[1][k] = _std1(c60) if several else np.nan
        out[2][k] = _std1(c240) if several else np.nan
        out[3][k] = _mean_abs(c60)
        for t in range(named):
            out[4 + t][k] = _triangle(logp, k, cols, signs, t)
        out[4 + named][k] = _tri_mean_abs(logp, k, cols, signs, named)


# --- online: one grid row at a time (see bqx.serving.market) ---

def online_params(pair: str, pairs: tuple[str, ...]) -> tuple:
    """Each triangle's legs as (column, sign) rows, -1 for a leg not in the panel; named ones first."""
    def legs(t: tuple[str, str, str]) -> list[tuple[int, float]]:
        out = []
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2])):
            name, inverse = (a + b).lower(), (b + a).lower()
            out.append((pairs.index(name), 1.0) if name in pairs else (pairs.index(inverse), -1.0)
                       if inverse in pairs else (-1, 0.0))
        return out

    every = [legs(t) for t in (*NAMED_TRIANGLES, *all_triangles())]
    cols = np.array([[c for c, _ in t] for t in every], dtype=np.int64)
    signs = np.array([[s for _, s in t] for t in every])
    return cols, signs, len(NAMED_TRIANGLES)


@njit(cache=True)
def _ranks(values: np.ndarray, out: np.ndarray) -> None:
    """Each value's rank among them (:func:`bqx.features.incremental.rank_of`: 1 = the largest, NaN where
    not finite, values within 1e-9 tied in order of position: sums that are equal in exact arithmetic,
    two currencies whose pairs are all stale, must not be ordered by their last bits)."""
    for j in range(len(values)):
        out[j] = rank_of(float(j), values)


@njit(cache=True)
def rank_rows(values: np.ndarray) -> np.ndarray:
    """:func:`_ranks` of every row."""
    out = np.empty_like(values)
    for t in range(values.shape[0]):
        _ranks(values[t], out[t])
    return out


@njit(cache=True)
def _std1(x: np.ndarray) -> float:
    """Sample standard deviation (ddof 1), in plain loops: no temporary per row."""
    n = len(x)
    if n < 2:
        return np.nan
    s = 0.0
    for v in x:
        s += v
    m = s / n
    d = 0.0
    for v in x:
        d += (v - m) ** 2
    return np.sqrt(d / (n - 1))


@njit(cache=True)
def _mean_abs(x: np.ndarray) -> float:
    s = 0.0
    for v in x:
        s += abs(v)
    return s / len(x)


@njit(cache=True)
def _tri_mean_abs(logp: np.ndarray, k: int, cols: np.ndarray, signs: np.ndarray, named: int) -> float:
    """Mean absolute residual over every triangle (after the named ones) whose three legs are in the panel."""
    total, count = 0.0, 0
    for t in range(named, cols.shape[0]):
        if cols[t, 0] >= 0 and cols[t, 1] >= 0 and cols[t, 2] >= 0:
            total += abs(_triangle(logp, k, cols, signs, t))
            count += 1
    return total / count if count else np.nan


@njit(cache=True)
def _triangle(logp: np.ndarray, k: int, cols: np.ndarray, signs: np.ndarray, t: int) -> float:
    v = 0.0
    for leg, weight in ((0, 1.0), (1, 1.0), (2, -1.0)):
        c = cols[t, leg]
        if c < 0:
            return np.nan
        v += weight * signs[t, leg] * logp[k, c]
    return v * 1e4


@njit(cache=True)
def online_step(k: int, r: np.ndarray, g: np.ndarray, logp: np.ndarray, cols: np.ndarray, signs: np.ndarray,
                named: int, state: np.ndarray, out: np.ndarray) -> int:
    n_cur, n_pairs = g.shape[1], r.shape[1]
    out[:] = np.nan
    g60, g240 = np.zeros(n_cur), np.zeros(n_cur)
    r60, r240 = np.zeros(n_pairs), np.zeros(n_pairs)
    for back in range(240):
        i = k - back
        if i < 0:
            g240[:], r240[:] = np.nan, np.nan
            if back < 60:
                g60[:], r60[:] = np.nan, np.nan
            break
        g240 += g[i]
        r240 += r[i]
        if back < 60:
            g60 += g[i]
            r60 += r[i]
    out[:n_cur] = g60
    out[n_cur:2 * n_cur] = g240
    _ranks(g240, out[2 * n_cur:3 * n_cur])
    j = 3 * n_cur
    if n_pairs > 1:
        out[j], out[j + 1], out[j + 2] = _std1(r[k]), _std1(r60), _std1(r240)
    out[j + 3] = _mean_abs(r60)
    j += 4
    for t in range(named):
        out[j + t] = _triangle(logp, k, cols, signs, t)
    out[j + named] = _tri_mean_abs(logp, k, cols, signs, named)
    return 0


TABLES: dict[str, Family] = {
    "cross_sectional_panel": Family(lambda s: names(),
                                    lambda inp, s: on_pair_rows(inp, compute(inp.panel)),
                                    lambda s: 241,
                                    Online(("r", "g", "logp"), online_step, panel=True,
                                           pair_params=online_params)),
}
