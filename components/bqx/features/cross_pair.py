"""``cross_pair``: the pair against its base and quote currency baskets (44 features).

r is this pair's one-row log return (bps), g_b and g_q the strengths of its base and quote currency
(:mod:`bqx.panel`); r = g_b - g_q exactly when every triangle holds. For W in (15, 60, 240, 1440):
``base_str{W}`` / ``quote_str{W}`` the strengths summed over W, ``basket_diff{W}`` their difference,
``resid{W}`` = sum r - basket_diff (the pair's own, non-basket move), ``beta{W}`` / ``corr{W}`` of r on
g_b - g_q, ``base_share{W}`` = |base| / (|base| + |quote|), ``idio_vol_ratio{W}`` = sd(r - (g_b - g_q)) /
sd(r), ``base_rank{W}`` / ``quote_rank{W}`` among the 8 currencies by summed strength (1 = strongest)
and ``rank_gap{W}`` = quote_rank - base_rank.

Declared once as expressions (:func:`table`) over the pair's return ``r`` and the 8 strengths
``g0`` .. ``g7``; the base and quote currencies' positions are parameters, read with ``pick`` and
``rank``. A window of stale quotes (every strength exactly 0) sums to exactly 0, so its ranks are ties
and its ratios NaN rather than rounding residue.
"""

from __future__ import annotations

import numpy as np

from bqx.config import Settings
from bqx.features.family import Family, PanelBinding, from_panel_spec, panel_batch
from bqx.features.spec import Expr, Kernel, clip, compile_table, param, pick, positive, rank, sdiv, series, sqrt, wsum
from bqx.pairs import CURRENCIES, split_pair
from bqx.panel import Panel

WINDOWS: tuple[int, ...] = (15, 60, 240, 1440)
FIELDS: tuple[str, ...] = ("base_str", "quote_str", "basket_diff", "resid", "beta", "corr", "base_share",
                           "idio_vol_ratio", "base_rank", "quote_rank", "rank_gap")
PARAMS = ("base", "quote")  # the kernel's parameters: the base and quote currencies' positions in CURRENCIES


def names() -> list[str]:
    return [f"{f}{w}" for w in WINDOWS for f in FIELDS]


def _comoment(x: Expr, y: Expr, w: int) -> Expr:
    """sum (x - mean x)(y - mean y) over the window, from window sums (returns: centred series)."""
    return wsum(x * y, w) - wsum(x, w) * wsum(y, w) / float(w)


def table() -> dict[str, Expr]:
    r = series("r")
    g = [series(f"g{c}") for c in range(len(CURRENCIES))]
    bi, qi = param("base"), param("quote")
    basket = pick(bi, g) - pick(qi, g)
    idio = r - basket
    out: dict[str, Expr] = {}
    for w in WINDOWS:
        sums = [wsum(x, w) for x in g]
        bs, qs = pick(bi, sums), pick(qi, sums)
        m_rb, m_rr = _comoment(r, basket, w), positive(_comoment(r, r, w))
        m_bb, m_ee = positive(_comoment(basket, basket, w)), positive(_comoment(idio, idio, w))
        base_rank, quote_rank = rank(bi, sums), rank(qi, sums)
        values = {
            "base_str": bs, "quote_str": qs, "basket_diff": bs - qs, "resid": wsum(r, w) - (bs - qs),
            "beta": sdiv(m_rb / float(w), m_bb / float(w)), "corr": clip(sdiv(m_rb, sqrt(m_rr * m_bb)), -1.0, 1.0),
            "base_share": sdiv(abs(bs), abs(bs) + abs(qs)),
            "idio_vol_ratio": sdiv(sqrt(m_ee / float(w - 1)), sqrt(m_rr / float(w - 1))),
            "base_rank": base_rank, "quote_rank": quote_rank, "rank_gap": quote_rank - base_rank,
        }
        out.update({f"{f}{w}": values[f] for f in FIELDS})
    return out


def kernel(s: Settings | None = None) -> Kernel:
    return compile_table(table(), PARAMS)


def bind(pair: str, pairs: tuple[str, ...]) -> PanelBinding:
    """The pair's return column, the 8 strengths, and its two currencies' positions among them."""
    base, quote = split_pair(pair)
    columns = {"r": ("r", pairs.index(pair)), **{f"g{c}": ("g", c) for c in range(len(CURRENCIES))}}
    return PanelBinding(columns, (float(CURRENCIES.index(base)), float(CURRENCIES.index(quote))))


def compute(panel: Panel, pair: str) -> dict[str, np.ndarray]:
    """Every feature of ``pair`` on every grid row of the panel."""
    return panel_batch(kernel(), bind(pair, panel.pairs), panel)


TABLES: dict[str, Family] = {"cross_pair": from_panel_spec(kernel, bind)}
