"""The cross-pair panel and its tables against direct computations on a 28-pair sample."""

import numpy as np
import pandas as pd
import pytest

from bqx.config import Settings
from bqx.features import correlation, cross_pair, cross_sectional, error_correction
from bqx.pairs import CURRENCIES, PAIRS, split_pair
from bqx.panel import build_panel, load_panel, save_panel
from bqx.sample import generate

T = 2500


def close(a, b, rtol=1e-6, atol=1e-10):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


@pytest.fixture(scope="module")
def panel():
    return build_panel(generate(days=2, seed=11), Settings())


def test_strength_is_the_design_formula_and_explains_every_pair(panel):
    for a in CURRENCIES:
        direct = sum((1 if split_pair(p)[0] == a else -1) * panel.r[:, panel.col(p)]
                     for p in PAIRS if a in split_pair(p)) / 8
        close(panel.g[1:, CURRENCIES.index(a)], direct[1:])
    for p in ("eurusd", "gbpjpy", "nzdcad"):
        b, q = split_pair(p)
        close(panel.r[1:, panel.col(p)], panel.g[1:, CURRENCIES.index(b)] - panel.g[1:, CURRENCIES.index(q)],
              atol=1e-9)
    assert np.nanmax(np.abs(panel.triangle("EUR", "USD", "JPY"))) < 1e-6  # the sample's triangles hold


def test_panel_round_trips_through_parquet(panel, tmp_path):
    back = load_panel(save_panel(panel, tmp_path / "panel.parquet"))
    assert back.pairs == panel.pairs
    for field in ("ts_ns", "logp", "r", "dbqx", "g", "gb"):  # NaN where written (uncovered currencies, first rows)
        np.testing.assert_array_equal(getattr(back, field), getattr(panel, field))
    assert back.g.flags.f_contiguous and back.dbqx.flags.f_contiguous  # the kernels read whole columns in place


def test_partial_panel_leaves_uncovered_currencies_nan():
    bars = generate(["eurusd", "usdjpy"], days=1, seed=2)
    p = build_panel(bars, Settings())
    assert np.isnan(p.g[:, CURRENCIES.index("GBP")]).all()
    eur, usd, jpy = (CURRENCIES.index(c) for c in ("EUR", "USD", "JPY"))
    close(p.g[1:, eur] - p.g[1:, usd], p.r[1:, p.col("eurusd")])
    close(p.g[1:, eur] + p.g[1:, usd] + p.g[1:, jpy], 0.0)


def test_correlations_against_pandas(panel):
    out = correlation.compute(panel, "eurusd", "idx")
    r = pd.DataFrame(panel.r, columns=panel.pairs)
    g = pd.DataFrame(panel.g, columns=CURRENCIES)
    for w in correlation.WINDOWS:
        close(out[f"corr{w}_jpy"][T], r["eurusd"].iloc[T - w + 1:T + 1].corr(g["JPY"].iloc[T - w + 1:T + 1]))
        corrs = {p: r["eurusd"].iloc[T - w + 1:T + 1].corr(r[p].iloc[T - w + 1:T + 1]) for p in PAIRS
                 if p != "eurusd"}
        base = [c for p, c in corrs.items() if "EUR" in split_pair(p)]
        other = [c for p, c in corrs.items() if not {"EUR", "USD"} & set(split_pair(p))]
        close(out[f"mean_corr_base{w}"][T], np.mean(base))
        close(out[f"mean_corr_other{w}"][T], np.mean(other))
        close(out[f"max_abs_corr{w}"][T], np.max(np.abs(list(corrs.values()))))
        close(out[f"share_above_half{w}"][T], np.mean(np.array(list(corrs.values())) > 0.5))
    assert len(base) == 6 and len(other) == 15
    bq = correlation.compute(panel, "eurusd", "bqx")
    d = pd.Series(panel.dbqx[:, panel.col("eurusd")])
    close(bq["corr240_usd"][T], d.iloc[T - 239:T + 1].corr(pd.Series(panel.gb[:, 4]).iloc[T - 239:T + 1]))


def test_cross_sectional_ranks_dispersion_and_triangles(panel):
    out = cross_sectional.compute(panel)
    g240 = panel.g[T - 239:T + 1].sum(axis=0)
    ranks = pd.Series(-g240).rank().to_numpy()
    for j, c in enumerate(CURRENCIES):
        close(out[f"g240_{c.lower()}"][T], g240[j])
        assert out[f"rank240_{c.lower()}"][T] == ranks[j]
    cum60 = panel.r[T - 59:T + 1].sum(axis=0)
    close(out["disp60"][T], np.std(cum60, ddof=1))
    close(out["tri_eurusdjpy"][T], (panel.log_cross("EUR", "USD")[T] + panel.log_cross("USD", "JPY")[T]
                                    - panel.log_cross("EUR", "JPY")[T]) * 1e4, atol=1e-8)


def test_cross_pair_against_direct_windows(panel):
    out = cross_pair.compute(panel, "gbpjpy")
    r = panel.r[:, panel.col("gbpjpy")]
    basket = panel.g[:, CURRENCIES.index("GBP")] - panel.g[:, CURRENCIES.index("JPY")]
    for w in cross_pair.WINDOWS:
        sl = slice(T - w + 1, T + 1)
        close(out[f"base_str{w}"][T], panel.g[sl, CURRENCIES.index("GBP")].sum())
        close(out[f"resid{w}"][T], 0.0, atol=1e-7)  # exact triangles: the baskets explain the pair
        cov = np.cov(r[sl], basket[sl], ddof=0)
        close(out[f"beta{w}"][T], cov[0, 1] / cov[1, 1])
        sums = panel.g[sl].sum(axis=0)
        assert out[f"base_rank{w}"][T] == 1 + np.sum(sums > sums[CURRENCIES.index("GBP")])


def test_error_correction_against_ols(panel):
    out = error_correction.compute(panel, "eurgbp")
    anchors = {p: error_correction.anchor_for(p) for p in ("eurgbp", "usdjpy", "eurusd")}
    assert anchors == {"eurgbp": "USD", "usdjpy": "EUR", "eurusd": "JPY"}
    y = panel.logp[:, panel.col("eurgbp")]
    x = panel.log_cross("EUR", "USD")
    w = 240
    sl = slice(T - w + 1, T + 1)
    beta, alpha = np.polyfit(x[sl], y[sl], 1)
    close(out["leg1_beta240"][T], beta)
    e = y[sl] - alpha - beta * x[sl]
    close(out["leg1_resid240"][T], e[-1], atol=1e-9)
    close(out["leg1_z240"][T], e[-1] / np.sqrt(np.sum(e**2) / (w - 2)))
    # phi: OLS slope of the residual's change on its lagged level over the window (current beta)
    ew = y[T - w:T + 1] - alpha - beta * x[T - w:T + 1]
    phi = np.polyfit(ew[:-1], np.diff(ew), 1)[0]
    close(out["leg1_phi240"][T], phi)
    hl = -np.log(2) / np.log1p(phi) if -1 < phi < 0 else 10 * w
    close(out["leg1_half_life240"][T], min(hl, 10 * w))
