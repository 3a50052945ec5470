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
from bqx.features.rolling import fast_rolling_corr, fast_rolling_cov, fast_rolling_sum, safe_div
from bqx.pairs import CURRENCIES, split_pair
from bqx.panel import Panel

WINDOWS: tuple[int, ...] = (15, 60, 240, 1440)
FIELDS: tuple[str, ...] = ("base_str", "quote_str", "basket_diff", "resid", "beta", "corr", "base_share",
                           "idio_vol_ratio", "base_rank", "quote_rank", "rank_gap")


def names() -> list[str]:
    return [f"{f}{w}" for w in WINDOWS for f in FIELDS]


def _rolling_var(x: np.ndarray, w: int) -> np.ndarray:
    return np.maximum(fast_rolling_cov(x, x, w, ddof=1), 0.0)


def compute(panel: Panel, pair: str) -> dict[str, np.ndarray]:
    base, quote = split_pair(pair)
    bi, qi = CURRENCIES.index(base), CURRENCIES.index(quote)
    r = panel.r[:, panel.col(pair)]
    gb, gq = panel.g[:, bi], panel.g[:, qi]
    basket = gb - gq
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        sums = np.column_stack([fast_rolling_sum(panel.g[:, j], w) for j in range(len(CURRENCIES))])
        finite = np.isfinite(sums)
        ranks = np.argsort(np.argsort(-np.where(finite, sums, -np.inf), axis=1), axis=1) + 1.0
        ranks[~finite] = np.nan
        bs, qs = sums[:, bi], sums[:, qi]
        sr = fast_rolling_sum(r, w)
        cov = fast_rolling_cov(r, basket, w)
        var_b = np.maximum(fast_rolling_cov(basket, basket, w), 0.0)
        out[f"base_str{w}"], out[f"quote_str{w}"] = bs, qs
        out[f"basket_diff{w}"] = bs - qs
        out[f"resid{w}"] = sr - (bs - qs)
        out[f"beta{w}"] = safe_div(cov, var_b)
        out[f"corr{w}"] = fast_rolling_corr(r, basket, w)
        out[f"base_share{w}"] = safe_div(np.abs(bs), np.abs(bs) + np.abs(qs))
        out[f"idio_vol_ratio{w}"] = safe_div(np.sqrt(_rolling_var(r - basket, w)), np.sqrt(_rolling_var(r, w)))
        out[f"base_rank{w}"], out[f"quote_rank{w}"] = ranks[:, bi], ranks[:, qi]
        out[f"rank_gap{w}"] = ranks[:, qi] - ranks[:, bi]
    return {k: out[k] for k in names()}


# --- online: one grid row at a time (see bqx.serving.market) ---

def online_params(pair: str, pairs: tuple[str, ...]) -> tuple:
    base, quote = split_pair(pair)
    return pairs.index(pair), CURRENCIES.index(base), CURRENCIES.index(quote)


@njit(cache=True)
def online_step(k: int, r: np.ndarray, g: np.ndarray, col: int, bi: int, qi: int, state: np.ndarray,
                out: np.ndarray) -> int:
    n_cur = g.shape[1]
    sums = np.zeros(n_cur)
    ranks = np.empty(n_cur)
    s = np.zeros(7)  # r, basket, r^2, basket^2, r basket, idio, idio^2
    rows = 0
    out[:] = np.nan
    for wi in range(len(WINDOWS)):
        w = WINDOWS[wi]
        if k - w + 1 < 0:
            break
        while rows < w:
            i = k - rows
            x, b = r[i, col], g[i, bi] - g[i, qi]
            e = x - b
            sums += g[i]
            s[0] += x
            s[1] += b
            s[2] += x * x
            s[3] += b * b
            s[4] += x * b
            s[5] += e
            s[6] += e * e
            rows += 1
        _ranks(sums, ranks)
        bs, qs = sums[bi], sums[qi]
        m_rb = lt.comoment(s[4], s[0], s[1], w)
        m_rr, m_bb = max(lt.comoment(s[2], s[0], s[0], w), 0.0), max(lt.comoment(s[3], s[1], s[1], w), 0.0)
        m_ee = max(lt.comoment(s[6], s[5], s[5], w), 0.0)
        j = wi * len(FIELDS)
        out[j], out[j + 1], out[j + 2], out[j + 3] = bs, qs, bs - qs, s[0] - (bs - qs)
        out[j + 4] = lt.sdiv(m_rb / w, m_bb / w)
        out[j + 5] = lt.clip_corr(m_rb, m_rr, m_bb)
        out[j + 6] = lt.sdiv(abs(bs), abs(bs) + abs(qs))
        out[j + 7] = lt.sdiv(np.sqrt(m_ee / (w - 1)), np.sqrt(m_rr / (w - 1)))
        out[j + 8], out[j + 9], out[j + 10] = ranks[bi], ranks[qi], ranks[qi] - ranks[bi]
    return 0


TABLES: dict[str, Family] = {
    "cross_pair": Family(lambda s: names(),
                         lambda inp, s: on_pair_rows(inp, compute(inp.panel, inp.pair)),
                         lambda s: max(WINDOWS) + 1,
                         Online(("r", "g"), online_step, panel=True, pair_params=online_params)),
}
