"""Feature math against independent references, and causality of every computed table."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bqx.catalog import Catalog
from bqx.config import Settings
from bqx.extract import compute_tables, pair_inputs
from bqx.features import bqx_core, primary, reg, technical
from bqx.features.rolling import rolling_std
from bqx.io import PARQUET_CODEC

RTOL = 1e-6


def _close(a: np.ndarray, b: np.ndarray, rtol: float = RTOL, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


@pytest.fixture(scope="module")
def idx() -> np.ndarray:
    rng = np.random.default_rng(11)
    return 100 * np.exp(np.cumsum(rng.standard_normal(1500) * 1e-4))


def test_bqx_v1_matches_direct_loops(idx):
    s = Settings()
    out = bqx_core.compute(idx, s)
    for w in s.features.bqx_windows:
        for t in (w, 400, len(idx) - 1):
            d = np.array([(idx[t - i] - idx[t]) / idx[t] for i in range(1, w + 1)])
            _close(out[f"w{w}_bqx_return"][t], d.sum())
            _close(out[f"w{w}_bqx_max"][t], d.max())
            _close(out[f"w{w}_bqx_min"][t], d.min())
            _close(out[f"w{w}_bqx_avg"][t], d.mean())
            _close(out[f"w{w}_bqx_stdev"][t], np.std(idx[t - w:t], ddof=1) / idx[t])
            _close(out[f"w{w}_bqx_endpoint"][t], d[-1])
        assert np.isnan(out[f"w{w}_bqx_return"][w - 1])


def test_bqx_v3_and_primary_series(idx):
    s = Settings().replace(bqx_version="v3", bqx_v3_windows=(45, 90, 180, 360, 720, 1440, 1441))
    out = bqx_core.compute(idx, s)
    t = 1460
    _close(out["bqx_90"][t], (idx[t] - idx[t - 90]) / idx[t - 90] * 100)
    prim = primary.primary_bqx(idx, s)
    _close(prim[t], (idx[t] - idx[t - 60]) / idx[t - 60] * 100)
    assert len(bqx_core.names(s)) == 40


def test_reg_matches_polyfit(idx):
    w = 90
    f = reg.fit_window(idx, w)
    x = np.arange(w)
    for t in (w - 1, 700, len(idx) - 1):
        y = idx[t - w + 1:t + 1]
        a, b, c = np.polyfit(x, y, 2)
        fit = np.polyval([a, b, c], x)
        sse, sst = np.sum((y - fit) ** 2), np.sum((y - y.mean()) ** 2)
        _close(f["a_coef"][t], a)
        _close(f["b_coef"][t], b)
        _close(f["c_coef"][t], c)
        _close(f["yhat_end"][t], fit[-1])
        _close(f["r2"][t], 1 - sse / sst)
        _close(f["rmse"][t], np.sqrt(sse / w))
        _close(f["resid_end"][t], y[-1] - fit[-1], atol=1e-10)
    assert np.isnan(f["a_coef"][w - 2])


def test_bounded_ppo_on_a_series_that_crosses_zero():
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.standard_normal(5000)) * 1e-3
    x -= x.mean()  # crosses zero many times, as BQX does
    plain, bounded = technical.compute(x)["ppo_12_26"], technical.compute(x, bounded_ppo=True)["ppo_12_26"]
    assert np.nanmax(np.abs(plain)) > 1e3  # the percent form explodes near zero
    assert np.nanmax(np.abs(bounded)) < 10
    e = pd.Series(x)
    ref = (e.ewm(span=12, adjust=False).mean() - e.ewm(span=26, adjust=False).mean()) / e.rolling(100).std()
    _close(bounded[99:], ref.to_numpy()[99:])


def test_technical_matches_pandas_references(idx):
    x = pd.Series(idx)
    out = technical.compute(idx)
    d = x.diff()
    up = d.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    down = (-d).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    _close(out["rsi_14"][1:], (100 - 100 / (1 + up / down)).to_numpy()[1:])
    macd = x.ewm(span=12, adjust=False).mean() - x.ewm(span=26, adjust=False).mean()
    _close(out["macd_12_26_9"], macd.to_numpy())
    _close(out["macd_signal_12_26_9"], macd.ewm(span=9, adjust=False).mean().to_numpy())
    lo, hi = x.rolling(14).min(), x.rolling(14).max()
    _close(out["stoch_k_14"], (100 * (x - lo) / (hi - lo)).to_numpy())
    _close(out["willr_28"], (-100 * (x.rolling(28).max() - x) / (x.rolling(28).max() - x.rolling(28).min())).to_numpy())
    _close(out["sma_dist_50"], (x - x.rolling(50).mean()).to_numpy(), atol=1e-9)
    _close(out["zscore_60"], ((x - x.rolling(60).mean()) / x.rolling(60).std()).to_numpy())
    tp = x.rolling(20)
    mad = tp.apply(lambda v: np.mean(np.abs(v - v.mean())), raw=True)
    _close(out["cci_20"], ((x - tp.mean()) / (0.015 * mad)).to_numpy())
    t = 500  # aroon: rows since the 25+1-row high, by a direct loop
    since = 25 - int(np.argmax(idx[t - 25:t + 1][::-1] == idx[t - 25:t + 1].max()))
    _close(out["aroon_up_25"][t], 100.0 * since / 25)
    _close(rolling_std(idx, 30), x.rolling(30).std().to_numpy(), rtol=1e-6)
    assert len(out) == 56


def _shock_after(bars: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """A copy whose prices, quotes, volume and times all change after row t."""
    shocked = bars.copy()
    rng = np.random.default_rng(seed)
    factor = np.exp(rng.standard_normal(len(bars) - t - 1) * 0.01)
    for col in ("open", "high", "low", "close", "bid", "ask"):
        shocked.loc[t + 1:, col] = shocked.loc[t + 1:, col].to_numpy() * factor
    shocked.loc[t + 1:, "volume"] = shocked.loc[t + 1:, "volume"].to_numpy() * rng.uniform(0.5, 2, len(factor))
    shocked.loc[t + 1:, "ts_utc"] = shocked.loc[t + 1:, "ts_utc"] + pd.Timedelta(minutes=7)
    return shocked


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_every_computed_table_is_causal(bars_2d, version):
    """Change every input of every pair after row t (prices, volume, quotes, times): no feature at rows
    <= t may move, bit for bit; and every table must react to the change somewhere after t."""
    from bqx.panel import build_panel

    s = Settings().replace(bqx_version=version, bqx_v3_windows=(45, 90, 180, 360, 720, 1000, 1200), hmm_fit_rows=1000)
    t = 2000
    _, inputs = pair_inputs(bars_2d["eurusd"], s, "eurusd", build_panel(bars_2d, s))
    base = compute_tables(inputs, s)
    shocked = {p: _shock_after(b, t, seed) for seed, (p, b) in enumerate(bars_2d.items())}
    _, inputs2 = pair_inputs(shocked["eurusd"], s, "eurusd", build_panel(shocked, s))
    moved = compute_tables(inputs2, s)
    assert set(base) == {tb.key for tb in Catalog(s).tables}
    for table, block in base.items():
        reacted = False
        for name, values in block.items():
            np.testing.assert_array_equal(values[: t + 1], moved[table][name][: t + 1], err_msg=f"{table}.{name}")
            reacted |= not np.array_equal(values[t + 1:], moved[table][name][t + 1:], equal_nan=True)
        assert reacted, f"{table} ignores the bars after t"


def test_no_all_nan_column_after_warmup(settings, tmp_path, monkeypatch):
    from bqx.extract import extract_pair
    from bqx.panel import build_panel
    from bqx.sample import generate

    bars = generate(days=4, seed=7)  # all 28 pairs (the cross-pair tables), past the 2-day HMM fit window
    path = extract_pair(bars["usdjpy"], "usdjpy", settings, tmp_path, build_panel(bars, settings))
    wide = pd.read_parquet(path.path)
    assert list(wide.columns[:4]) == ["ts_utc", settings.features.target_name, "bqx_now", "fwd_ret_h60"]
    feats = wide.iloc[:, 4:]
    assert feats.shape[1] == 1080 and all("." in c for c in feats.columns)
    assert (feats.dtypes == np.float32).all()
    all_nan = [c for c in feats.columns if feats[c].isna().all()]
    assert not all_nan
    mostly = feats.iloc[:-1].isna().mean()
    assert mostly.max() < 0.01, mostly.idxmax()  # warm-up dropped: (almost) no NaN left
    # the output is the wide frame alone (nothing twice), with statistics only on the time column
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.parquet", "online_state.json"]
    meta = pq.ParquetFile(path.path).metadata.row_group(0)
    column = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == feats.columns[0])
    assert column.compression == PARQUET_CODEC["compression"].upper() and "BYTE_STREAM_SPLIT" in column.encodings
    assert not column.is_stats_set and meta.column(0).path_in_schema == "ts_utc" and meta.column(0).is_stats_set
    # a span too long to hold the float32 block stages every table on disk instead: the same file comes out
    monkeypatch.setattr("bqx.extract.IN_MEMORY_BYTES", 0)
    staged = extract_pair(bars["usdjpy"], "usdjpy", settings, tmp_path / "staged", build_panel(bars, settings))
    pd.testing.assert_frame_equal(pd.read_parquet(staged.path), wide, check_exact=True)  # NaN where NaN
    assert sorted(p.name for p in (tmp_path / "staged").iterdir()) == ["features.parquet", "online_state.json"]
    assert pq.read_schema(staged.path) == pq.read_schema(path.path)  # required float32 fields either way
    smeta = pq.ParquetFile(staged.path).metadata
    assert smeta.num_row_groups == pq.ParquetFile(path.path).metadata.num_row_groups
    assert not smeta.row_group(0).column(5).is_stats_set and smeta.row_group(0).column(0).is_stats_set


def test_target_is_future_bqx_and_trailing_rows_are_nan(idx, settings):
    from bqx.targets import compute

    tgt = compute(idx, settings)[settings.features.target_name]
    series = primary.bqx_series(idx, 60, "v1")
    _close(tgt[100], series[160])
    assert np.isnan(tgt[-60:]).all() and np.isfinite(tgt[-61])


def test_fast_rolling_sum_is_the_difference_of_running_sums_bit_for_bit():
    """The compiled pass adds the finite values in row order as ``np.cumsum`` does: same bits as the numpy
    definition, NaN for any window holding a non-finite value, on strided columns too."""
    from bqx.features.rolling import fast_rolling_sum

    rng = np.random.default_rng(5)
    x = rng.standard_normal((20_000, 3))
    x[500:510, 1], x[7_000, 1], x[9_000, 1] = np.nan, np.inf, -np.inf
    for column in (np.asfortranarray(x)[:, 1], x[:, 1]):  # contiguous and strided
        finite = np.isfinite(column)
        cs = np.concatenate([[0.0], np.cumsum(np.where(finite, column, 0.0))])
        cnt = np.concatenate([[0], np.cumsum(finite)])
        for w in (1, 60, 240, 20_000, 20_001):
            want = np.full(len(column), np.nan)
            if w <= len(column):
                want[w - 1:] = np.where(cnt[w:] - cnt[:-w] == w, cs[w:] - cs[:-w], np.nan)
            np.testing.assert_array_equal(fast_rolling_sum(column, w), want)
