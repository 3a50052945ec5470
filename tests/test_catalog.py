from bqx.catalog import TABLES, Catalog
from bqx.columns import base_name, lag_name, parse
from bqx.config import Settings

DESIGN_COUNTS = {
    "technical_idx": 56, "technical_bqx": 56, "statistics_bqx": 48, "bollinger_bqx": 20, "fibonacci_bqx": 20,
    "correlation_idx": 45, "correlation_bqx": 45, "error_correction": 30, "realized_vol": 40, "hmm_regime": 25,
    "cross_sectional_panel": 35, "spectral_features": 80, "bqx": 40, "reg_idx": 72, "reg_bqx": 72,
    "volume_features": 32, "time_features": 20, "spread_features": 6, "moving_avg_idx": 24,
    "multi_resolution_idx": 30, "dual_domain": 28, "cross_pair": 44, "event_regime": 26, "multi_scale": 60,
    "parabolic": 126,
}


def test_catalog_structure_matches_design():
    assert {t.key: t.count for t in TABLES} == DESIGN_COUNTS
    counts = Catalog().planned_counts()
    assert counts == {"base": 1080, "laggable": 380, "lagged": 1560, "candidates": 2640}
    assert Catalog().planned_domain_counts() == {"idx": 273, "bqx": 301, "cross": 506}


def test_computed_tables_have_catalog_counts_and_unique_names():
    for version in ("v1", "v3"):
        cat = Catalog(Settings().replace(bqx_version=version))
        names = [f.name for f in cat.features]
        assert len(names) == len(set(names))
        for t in cat.computed_tables:
            assert sum(1 for f in cat.features if f.table == t.key) == t.count
        assert {t.key for t in cat.computed_tables} == set(DESIGN_COUNTS)  # every table is computed
        assert len(names) == 1080
        candidates = cat.candidate_names()
        assert len(candidates) == len(set(candidates))
        laggable = sum(1 for f in cat.features if f.laggable)
        assert len(candidates) == len(names) + 4 * laggable + 40


def test_lag_names_round_trip_and_version_changes_with_settings():
    assert base_name(lag_name("technical_idx.rsi_14", 60)) == "technical_idx.rsi_14"
    assert base_name("reg_idx.w60_r2") == "reg_idx.w60_r2"
    assert parse("technical_idx.rsi_14_lag60") == ("technical_idx", "technical_idx.rsi_14", 60)
    assert parse("bqx.w15_bqx_return_lag61").lag == 61 and parse("reg_idx.w60_r2").lag == 0
    assert parse("event_regime.bars_since_lag") == ("event_regime", "event_regime.bars_since_lag", 0)  # no digits
    cat = Catalog()
    for f in cat.candidate_names():  # every candidate parses back to a catalog feature
        assert parse(f).base in cat.by_name and parse(f).table == cat.by_name[parse(f).base].table
    assert Catalog(Settings().replace(bqx_version="v3")).version() != Catalog().version()
    assert Catalog(Settings().replace(profile="base")).planned_counts()["base"] == 1080 - sum(
        t.count for t in TABLES if t.advanced)
