"""``cross_pair``: the pair against its base and quote currency baskets (44 features).

r is this pair's one-row log return (bps), g_b and g_q the strengths of its base and quote currency
(:mod:`bqx.panel`); r = g_b - g_q exactly when every triangle holds. For W in (15, 60, 240, 1440):
``base_str{W}`` / ``quote_str{W}`` the strengths summed over W, ``basket_diff{W}`` their difference,
``resid{W}`` = sum r - basket_diff (the pair's own, non-basket move), ``beta{W}`` / ``corr{W}`` of r on
g_b - g_q, ``base_share{W}`` = |base| / (|base| + |quote|), ``idio_vol_ratio{W}`` = sd(r - (g_b - g_q)) /
sd(r), ``base_rank{W}`` / ``quote_rank{W}`` among the 8 currencies by summed strength (1 = strongest)
and ``rank_gap{W}`` = quote_rank - base_rank.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features.cross_sectional import _ranks
from bqx.features.family import Family, Online, on_pair_rows
from bqx.pairs import CURRENCIES, split_pair
from bqx.panel import Panel

WINDOWS: tuple[int, ...] = (15, 60, 240, 1440)
FIELDS: tuple[str, ...] = ("base_str", "quote_str", "basket_diff", "resid", "beta", "corr", "base_share",
                           "idio_vol_ratio", "base_rank", "quote_rank", "rank_gap")


def names() -> list[str]:
    return [f"{f}{w}" for w in WINDOWS for f in FIELDS]


def compute(panel: Panel, pair: str) -> dict[str, np.ndarray]:
    """The table on the panel grid: one pass per window keeps the window sums (exact every W rows) and
    writes each row through the function the online step uses (:func:`_window_features`)."""
    col, bi, qi = online_params(pair, tuple(panel.pairs))
    out = np.full((len(names()), len(panel.ts_ns)), np.nan)
    _batch(np.ascontiguousarray(panel.r[:, col], dtype=np.float64), np.ascontiguousarray(panel.g, dtype=np.float64),
           bi, qi, out)
    return dict(zip(names(), out, strict=True))


def online_params(pair: str, pairs: tuple[str, ...]) -> tuple:
    base, quote = split_pair(pair)
    return pairs.index(pair), CURRENCIES.index(base), CURRENCIES.index(quote)


SUMS = 7  # over the window: r, basket, r^2, basket^2, r basket, idio (r - basket), idio^2


@njit(cache=True)
def _window_features(w: int, sums: np.ndarray, s: np.ndarray, bi: int, qi: int, ranks: np.ndarray,
                     out: np.ndarray, j: int) -> None:
    """One window's 11 features at out[j:] from its sums: each currency's summed strength (``sums``, NaN
    when its window holds a NaN) and the :data:`SUMS` moments ``s`` of r and the basket."""
    _ranks(sums, ranks)
    bs, qs = sums[bi], sums[qi]
    m_rb = lt.comoment(s[4], s[0], s[1], w)
    m_rr, m_bb = max(lt.comoment(s[2], s[0], s[0], w), 0.0), max(lt.comoment(s[3], s[1], s[1], w), 0.0)
    m_ee = max(lt.comoment(s[6], s[5], s[5], w), 0.0)
    out[j], out[j + 1], out[j + 2], out[j + 3] = bs, qs, bs - qs, s[0] - (bs - qs)
    out[j + 4] = lt.sdiv(m_rb / w, m_bb / w)
    out[j + 5] = lt.clip_corr(m_rb, m_rr, m_bb)
    out[j + 6] = lt.sdiv(abs(bs), abs(bs) + abs(qs))
    out[j + 7] = lt.sdiv(np.sqrt(m_ee / (w - 1)), np.sqrt(m_rr / (w - 1)))
    out[j + 8], out[j + 9], out[j + 10] = ranks[bi], ranks[qi], ranks[qi] - ranks[bi]


@njit(cache=True)
def _moments(x: float, b: float, into: np.ndarray, sign: float) -> None:
    e = x - b
    into[0] += sign * x
    into[1] += sign * b
    into[2] += sign * x * x
    into[3] += sign * b * b
    into[4] += sign * x * b
    into[5] += sign * e
    into[6] += sign * e * e


@njit(cache=True)
def _nonzero(x: float, b: float, into: np.ndarray, sign: float) -> None:
    """Count the window's nonzero terms of x, b, x b and x - b: a running sum of terms that are all
    zero (a stale quote) is read as exactly 0, as the online step's fresh sum is."""
    into[0] += sign * (x != 0.0)
    into[1] += sign * (b != 0.0)
    into[2] += sign * (x * b != 0.0)
    into[3] += sign * (x - b != 0.0)


@njit(cache=True)
def _batch(r: np.ndarray, g: np.ndarray, bi: int, qi: int, out: np.ndarray) -> None:
    """Every grid row, window by window: running sums of the finite values with a count of non-finite
    ones (the strengths per currency; r and the basket as one), recomputed exactly every W rows."""
    n, n_cur = g.shape
    sums, bad_g, nz_g, s, nz = np.zeros(n_cur), np.zeros(n_cur), np.zeros(n_cur), np.zeros(SUMS), np.zeros(4)
    view_sums, view_s = np.empty(n_cur), np.empty(SUMS)
    ranks, row = np.empty(n_cur), np.empty(out.shape[0])
    moment_of = np.array([0, 1, 0, 1, 2, 3, 3])  # which nonzero count each of the SUMS follows
    for wi in range(len(WINDOWS)):
        w = WINDOWS[wi]
        sums[:], bad_g[:], nz_g[:], s[:], nz[:] = 0.0, 0.0, 0.0, 0.0, 0.0
        bad_s = 0.0
        for t in range(n):
            for sign, i in ((1.0, t), (-1.0, t - w)):
                if i < 0:
                    continue
                for c in range(n_cur):
                    if np.isfinite(g[i, c]):
                        sums[c] += sign * g[i, c]
                        nz_g[c] += sign * (g[i, c] != 0.0)
                    else:
                        bad_g[c] += sign
                x, b = r[i], g[i, bi] - g[i, qi]
                if np.isfinite(x) and np.isfinite(b):
                    _moments(x, b, s, sign)
                    _nonzero(x, b, nz, sign)
                else:
                    bad_s += sign
            if t < w - 1:
                continue
            if (t + 1) % w == 0:  # exact sums of the window t - w + 1 .. t
                sums[:], s[:] = 0.0, 0.0
                for i in range(t - w + 1, t + 1):
                    for c in range(n_cur):
                        if np.isfinite(g[i, c]):
                            sums[c] += g[i, c]
                    x, b = r[i], g[i, bi] - g[i, qi]
                    if np.isfinite(x) and np.isfinite(b):
                        _moments(x, b, s, 1.0)
            for c in range(n_cur):
                view_sums[c] = np.nan if bad_g[c] else (sums[c] if nz_g[c] else 0.0)
            for k in range(SUMS):
                view_s[k] = np.nan if bad_s else (s[k] if nz[moment_of[k]] else 0.0)
            j = wi * len(FIELDS)
            _window_features(w, view_sums, view_s, bi, qi, ranks, row, j)
            for f in range(j, j + len(FIELDS)):
                out[f, t] = row[f]


# --- online: one grid row at a time (see bqx.serving.market) ---

@njit(cache=True)
def online_step(k: int, r: np.ndarray, g: np.ndarray, col: int, bi: int, qi: int, state: np.ndarray,
                out: np.ndarray) -> int:
    """Row k: one backward pass accumulates the sums, read off at each window length (nested windows)."""
    n_cur = g.shape[1]
    sums = np.zeros(n_cur)
    ranks = np.empty(n_cur)
    s = np.zeros(SUMS)
    rows = 0
    out[:] = np.nan
    for wi in range(len(WINDOWS)):
        w = WINDOWS[wi]
        if k - w + 1 < 0:
            break
        while rows < w:
            i = k - rows
            sums += g[i]
            _moments(r[i, col], g[i, bi] - g[i, qi], s, 1.0)
            rows += 1
        _window_features(w, sums, s, bi, qi, ranks, out, wi * len(FIELDS))
    return 0


TABLES: dict[str, Family] = {
    "cross_pair": Family(lambda s: names(),
                         lambda inp, s: on_pair_rows(inp, compute(inp.panel, inp.pair)),
                         lambda s: max(WINDOWS) + 1,
                         Online(("r", "g"), online_step, panel=True, pair_params=online_params)),
}
