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


def test_counts_derived_from_the_families_match_the_design():
    """The design's counts are checked here only: the catalog derives every count from the names the
    families declare, so this is the one place a deliberate change of the feature set shows up."""
    assert Catalog().table_counts() == DESIGN_COUNTS
    assert [t.key for t in TABLES] == list(DESIGN_COUNTS)  # catalog order
    counts = Catalog().counts()
    assert counts == {"base": 1080, "laggable": 380, "lagged": 1560, "candidates": 2640}
    assert Catalog().domain_counts() == {"idx": 273, "bqx": 301, "cross": 506}


def test_every_bqx_version_names_the_same_counts_uniquely():
    for version in ("v1", "v3"):
        cat = Catalog(Settings().replace(bqx_version=version))
        names = [f.name for f in cat.features]
        assert len(names) == len(set(names))
        assert cat.table_counts() == DESIGN_COUNTS
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
    assert Catalog(Settings().replace(profile="base")).counts()["base"] == 1080 - sum(
        DESIGN_COUNTS[t.key] for t in TABLES if t.advanced)
