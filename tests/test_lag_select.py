import numpy as np
import pandas as pd
import pytest

from bqx.catalog import Catalog
from bqx.config import SelectionSettings, Settings
from bqx.dataset import PairDataset
from bqx.lag import add_lags, lagged_block, sample_block, sample_candidates
from bqx.select import Quota, effective_quota, enforce_quota, select
from bqx.splits import bounds, purge_rows, split


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    from bqx.extract import extract_pair
    from bqx.sample import generate

    bars = generate(["eurusd"], days=5, seed=7)["eurusd"]  # past the 2-day HMM fit window
    return pd.read_parquet(extract_pair(bars, "eurusd", Settings(), tmp_path_factory.mktemp("x")).path)


def test_lags_are_exact_past_values(wide):
    s = Settings()
    cand = add_lags(wide, s)
    k = s.splits.max_lag
    assert len(cand) == len(wide) - k
    col = "technical_idx.rsi_14"
    np.testing.assert_array_equal(cand[f"{col}_lag60"].to_numpy(), wide[col].to_numpy()[k - 60:len(wide) - 60])
    np.testing.assert_array_equal(cand["bqx.w15_bqx_return_lag61"].to_numpy(),
                                  wide["bqx.w15_bqx_return"].to_numpy()[k - 61:len(wide) - 61])
    assert len([c for c in cand.columns if "." in c]) == len(Catalog(s).candidate_names())


def test_quota_holds_when_importance_favours_one_domain():
    cols = [f"bqx.f{i}" for i in range(300)] + [f"reg_idx.g{i}" for i in range(300)]
    domains = {c: ("bqx" if c.startswith("bqx") else "idx") for c in cols}
    importance = {c: (10.0 + i if domains[c] == "bqx" else 0.01 * i) for i, c in enumerate(cols)}
    chosen = enforce_quota(importance, domains, Quota(250, 100, 100))
    counts = {d: sum(domains[c] == d for c in chosen) for d in ("idx", "bqx")}
    assert len(chosen) == 250 and counts == {"idx": 100, "bqx": 150}
    assert chosen == sorted(chosen, key=lambda c: (-importance[c], c))
    assert enforce_quota(importance, domains, Quota(250, 100, 100)) == chosen


def test_effective_quota_scales_to_what_exists():
    s = Settings()
    assert effective_quota({"idx": 640, "bqx": 880, "cross": 0}, s) == Quota(250, 100, 100)
    assert effective_quota({"idx": 40, "bqx": 500, "cross": 0}, s) == Quota(250, 40, 100)
    assert effective_quota({"idx": 90, "bqx": 90, "cross": 0}, s) == Quota(180, 90, 90)
    # quotas above n_select are refused when the settings are made, naming the fields
    with pytest.raises(ValueError, match="'selection.min_idx' \\+ 'selection.min_bqx' \\(100 \\+ 100\\)"
                                         ".*'selection.n_select' \\(150\\)"):
        s.replace(n_select=150)
    q = effective_quota({"idx": 500, "bqx": 500}, s.replace(n_select=150, min_idx=75, min_bqx=75))
    assert q.min_idx + q.min_bqx <= 150


def test_purge_gap_separates_training_targets_from_validation(wide):
    s = Settings()
    cand = add_lags(wide, s)
    clean_rows = int(cand[s.features.target_name].notna().sum())
    b = bounds(clean_rows, s)
    assert b.gap == purge_rows(s) >= max(s.features.horizon, max(s.splits.lags))
    # the last training target looks `horizon` rows ahead; it must end before validation starts
    assert b.train[1] - 1 + s.features.horizon < b.val[0]
    assert b.val[1] - 1 + s.features.horizon < b.test[0]
    parts = split(cand, s)
    assert parts["train"]["ts_utc"].max() < parts["val"]["ts_utc"].min()
    assert all(p[s.features.target_name].notna().all() for p in parts.values())


def test_selection_is_deterministic_and_meets_quota(wide):
    s = Settings().replace(selection=SelectionSettings(sample_rows=600))
    train = split(add_lags(wide, s), s)["train"]
    a, b = select(train, s), select(train, s)
    assert a["features"] == b["features"]
    assert len(a["features"]) == 250
    assert a["domain_counts"]["idx"] >= 100 and a["domain_counts"]["bqx"] >= 100
    assert a["catalog_version"] == Catalog(s).version()


def test_split_rejects_too_little_data():
    s = Settings()
    frame = pd.DataFrame({"ts_utc": range(100), s.features.target_name: np.ones(100)})
    with pytest.raises(ValueError, match="too few"):
        split(frame, s)


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """extract -> lag -> select through the stage entry points on a 5-day pair."""
    from bqx import lag, select
    from bqx.extract import extract_pair
    from bqx.sample import generate

    s = Settings().replace(selection=SelectionSettings(sample_rows=800), horizons=(60, 30))
    root = tmp_path_factory.mktemp("stages")
    extract_pair(generate(["usdjpy"], days=5, seed=3)["usdjpy"], "usdjpy", s, root / "features")
    lag_summary = lag.run(root / "features", s, root / "candidates")
    result = select.run(root / "candidates", root / "features", "usdjpy", s, root / "dataset")
    return s, root, lag_summary, result


def test_lag_stage_samples_training_rows_only_and_plans_every_candidate(staged):
    import json

    s, root, lag_summary, _ = staged
    assert lag_summary.candidates == 2640 and lag_summary.sample_rows == 800
    splits = json.loads((root / "candidates" / "splits.json").read_text())
    sample = np.array(splits["sample_rows"])
    assert sample.min() >= splits["train"][0] and sample.max() < splits["train"][1]
    plan = json.loads((root / "candidates" / "lag_plan.json").read_text())
    assert len(plan["columns"]) == 2640 and plan["lags"]["bqx.w15_bqx_return_lag61"] == 61
    assert sorted(p.name for p in (root / "candidates").iterdir()) == ["lag_plan.json", "splits.json"]  # no values
    cand = sample_candidates(root / "features" / "features.parquet", plan["columns"], sample, s.features.target_name)
    assert cand.shape == (800, 2641) and (cand.dtypes.iloc[1:] == np.float32).all()
    wide = pd.read_parquet(root / "features" / "features.parquet")
    np.testing.assert_array_equal(cand["bqx.w15_bqx_return_lag61"].to_numpy(),
                                  wide["bqx.w15_bqx_return"].to_numpy(np.float32)[sample - 61])
    # the select stage's block: any column order (a base's lags apart or together), each column as above
    shuffled = list(np.random.default_rng(0).permutation(plan["columns"][40:])[:300]) + plan["columns"][:40]
    block = sample_block(root / "features" / "features.parquet", shuffled, sample)
    assert block.flags.f_contiguous and block.dtype == np.float32 and block.shape == (800, 340)
    with pytest.raises(ValueError, match="twice"):
        sample_block(root / "features" / "features.parquet", shuffled[:3] + shuffled[:1], sample)
    np.testing.assert_array_equal(block, cand[shuffled].to_numpy())
    with pytest.raises(ValueError, match="column-major float32 block of shape"):
        lagged_block({"a.x": np.zeros(5, np.float32)}, np.arange(5), ["a.x"], out=np.zeros((5, 1)))


def test_materialised_selection_equals_full_lagging(staged):
    s, root, _, result = staged
    wide = pd.read_parquet(root / "features" / "features.parquet")
    full = add_lags(wide, s).set_index("ts_utc")
    assert [p.name for p in (root / "dataset").iterdir()] == ["selection.json"]  # a view: no feature copied
    frames = PairDataset.open(root / "dataset", root / "features").frames()
    assert {k: len(v) for k, v in frames.items()} == result.rows
    test = frames["test"].set_index("ts_utc")
    assert list(test.columns) == ["target_bqx60_h60", "target_bqx60_h30", "bqx_now", "fwd_ret_h60",
                                  *result.features]
    assert list(result.selection["settings"]["features"]["horizons"]) == [60, 30]
    assert s.features.target_name == "target_bqx60_h60"
    chosen = result.features
    np.testing.assert_array_equal(test[chosen].to_numpy(), full.loc[test.index, chosen].to_numpy())
    target = s.features.target_name
    np.testing.assert_array_equal(test[target].to_numpy(), full.loc[test.index, target].to_numpy())


def test_no_training_target_window_reaches_validation_or_test(staged):
    import json

    s, root, _, _ = staged
    splits = json.loads((root / "candidates" / "splits.json").read_text())
    tr1, (va0, va1), te0 = splits["train"][1], splits["val"], splits["test"][0]
    # the target of row t is BQX at t + H, built from rate_idx rows t + H - W .. t + H
    assert tr1 - 1 + s.features.horizon < va0 and va1 - 1 + s.features.horizon < te0
    gap = max(s.features.horizon, max(s.splits.lags))
    assert va0 - tr1 >= gap and te0 - va1 >= gap
    counts = staged[3].domain_counts
    assert counts["idx"] >= 100 and counts["bqx"] >= 100 and sum(counts.values()) == 250


def test_selection_carries_extracts_online_state(staged):
    """The serving engine's baseline close and HMM fit travel from extract through selection.json."""
    import json

    from bqx.features.hmm_regime import STATES
    from bqx.sample import generate

    s, root, _, result = staged
    state = json.loads((root / "features" / "online_state.json").read_text())
    assert result.selection["online_state"] == state
    bars = generate(["usdjpy"], days=5, seed=3)["usdjpy"]
    assert state["baseline_close"] == float(bars["close"].iloc[0]) and state["baseline_ts"].startswith(
        str(bars["ts_utc"].iloc[0].date()))
    hmm = state["hmm"]
    assert hmm["fit_rows"] == s.features.hmm_fit_rows and np.allclose(np.sum(hmm["trans"], axis=1), 1.0)
    assert len(hmm["mu"]) == STATES and hmm["var"] == sorted(hmm["var"]) and hmm["sd"] > 0


def test_a_dataset_is_built_from_the_features_and_opens_with_one_clear_line(tmp_path):
    """Lagged columns are the base feature k rows back (NaN before the series starts), rows without a
    target are left out, and a wrong directory or an old selection says which file and what is wrong."""
    from bqx.dataset import define
    from bqx.io import write_json, write_parquet

    n = 12
    x = np.arange(n, dtype=np.float32)
    target = np.where(np.arange(n) == 5, np.nan, np.arange(n) * 10.0)
    features = pd.DataFrame({"ts_utc": np.arange(n), "target": target, "t.x": x})
    write_parquet(features, tmp_path / "f" / "features.parquet")
    chosen = define({"features": ["t.x_lag3", "t.x"], "target": "target"}, ["ts_utc", "target"],
                    {"train": [1, 7], "val": [7, 9], "test": [9, 12]})
    write_json(chosen, tmp_path / "d" / "selection.json")
    frames = PairDataset.open(tmp_path / "d", tmp_path / "f").frames()
    train = frames["train"]
    assert list(train.columns) == ["ts_utc", "target", "t.x_lag3", "t.x"]
    assert train["ts_utc"].tolist() == [1, 2, 3, 4, 6]  # row 5 has no target
    np.testing.assert_array_equal(train["t.x_lag3"].to_numpy(), [np.nan, np.nan, 0, 1, 3])
    assert train["t.x"].dtype == np.float32 and frames["test"]["t.x_lag3"].tolist() == [6, 7, 8]
    only = PairDataset.open(tmp_path / "d", tmp_path / "f").frames(("val",), columns=["t.x"])
    assert list(only) == ["val"] and list(only["val"].columns) == ["ts_utc", "target", "t.x"]
    with pytest.raises(FileNotFoundError, match=r"no selection.json \(is .* the select stage's dataset\?\)"):
        PairDataset.open(tmp_path / "f", tmp_path / "f")
    with pytest.raises(FileNotFoundError, match=r"no features.parquet \(is .* the extract stage's features\?\)"):
        PairDataset.open(tmp_path / "d", tmp_path / "d")
    with pytest.raises(ValueError, match=r"features.parquet: no column t.y, which the selection reads"):
        PairDataset.open(tmp_path / "d", tmp_path / "f").frames(columns=["t.y_lag3"])
    write_json({"features": ["t.x"], "target": "target"}, tmp_path / "old" / "selection.json")
    with pytest.raises(ValueError, match=r"selection.json: lacks head, splits \(written by an older bqx\? rerun"):
        PairDataset.open(tmp_path / "old", tmp_path / "f")
