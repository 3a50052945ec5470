"""The online feature engine equals the batch engine, bar by bar, and serves raw-bars requests."""

import json

import numpy as np
import pandas as pd
import pytest

from bqx.bars import validate_bars
from bqx.columns import parse
from bqx.config import Settings
from bqx.extract import online_state, pair_inputs
from bqx.features.family import PairInputs
from bqx.features.registry import FAMILIES
from bqx.model_package import load_tarball
from bqx.pairs import PAIRS
from bqx.panel import build_panel
from bqx.sample import generate
from bqx.serving.config import ServeConfig
from bqx.serving.engine import NOT_ONLINE, SERIES, PairEngine, market_keep, state_bytes
from bqx.serving.market import Market
from bqx.serving.models import ModelStore
from bqx.serving.payload import PayloadError
from bqx.serving.request_bars import parse_bars
from bqx.serving.server import App
from bqx.serving.synthetic import synthetic_model

ONLINE = [t for t in FAMILIES if t not in NOT_ONLINE]
PER_PAIR = [t for t in ONLINE if not FAMILIES[t].online.panel]
PANEL = [t for t in ONLINE if FAMILIES[t].online.panel]
STEPS = 40


@pytest.fixture(scope="module")
def bars():
    return generate(["eurusd"], days=6, seed=11)["eurusd"]


@pytest.fixture(scope="module")
def batch(bars):
    settings = Settings()
    _, inp = pair_inputs(bars, settings, "eurusd")
    return {f"{t}.{k}": v for t in PER_PAIR for k, v in FAMILIES[t].compute(inp, settings).items()}


@pytest.fixture(scope="module")
def market_bars():
    return generate(list(PAIRS), days=3, seed=12)


@pytest.fixture(scope="module")
def panel(market_bars):
    return build_panel(market_bars, Settings())


def _bar(row) -> dict[str, float]:
    return {k: float(row[k]) for k in row.index if k != "ts_utc"}


@pytest.mark.parametrize("table", PER_PAIR)
def test_each_kernel_equals_its_batch_family_on_every_row(bars, batch, table):
    """The one-row kernel, run over the whole history, reproduces the batch table row for row, and
    never reads a row after the one it computes."""
    settings = Settings()
    _, inp = pair_inputs(bars, settings, "eurusd")
    online = FAMILIES[table].online
    run = online.runtime(settings)
    names = FAMILIES[table].names(settings)
    series = [getattr(inp, k) for k in run.series]
    fitted = online.fit({k: getattr(inp, k) for k in SERIES}, settings) if online.fit else ()
    params = online.params(settings) + fitted
    state = np.zeros(run.state_size)
    run.init(state)
    got = np.empty((len(inp.idx), len(names)))
    rng = np.random.default_rng(3)
    for t in range(len(inp.idx)):
        if t % 997 == 500:  # causality: rows after t never reach row t's values
            future = [x.copy() for x in series]
            for y in future:
                y[t + 1:] = (y[t + 1:] * rng.uniform(0.5, 2.0, len(y) - t - 1)).astype(y.dtype)
            probe = np.empty(len(names))
            run.step(t, *future, *params, state.copy(), probe)
        used = run.step(t, *series, *params, state, got[t])
        assert used <= len(state)
        if t % 997 == 500:
            np.testing.assert_array_equal(probe, got[t], err_msg=f"{table}: row {t} moved with later bars")
    want = np.column_stack([batch[f"{table}.{n}"] for n in names])
    close = np.isclose(got, want, rtol=1e-6, atol=1e-9, equal_nan=True)
    bad = [f"{names[j]} (row {np.flatnonzero(~close[:, j])[0]})" for j in np.flatnonzero(~close.all(axis=0))]
    assert not bad, f"{table}: {len(bad)} feature(s) differ from the batch engine: {', '.join(bad[:8])}"
    # the comparison has teeth: most values are numbers once the table is warm
    assert np.isfinite(got[FAMILIES[table].warmup(settings) + 1:]).mean() > 0.9 or table == "volume_features"


@pytest.fixture(scope="module")
def stale_panel():
    """Five pairs, two of them with a hole in their quotes (their closes carried forward: AUD and NZD,
    which only audnzd prices here, have no move at all for 400 minutes)."""
    got = generate(("eurusd", "usdjpy", "eurjpy", "gbpusd", "audnzd"), days=3, seed=3)
    got["gbpusd"] = got["gbpusd"].drop(index=range(1500, 1550)).reset_index(drop=True)
    got["audnzd"] = got["audnzd"].drop(index=range(2500, 2900)).reset_index(drop=True)
    return build_panel(got, Settings())


def _panel_both_ways(panel, table: str, pair: str) -> tuple[list[str], np.ndarray, np.ndarray, list, tuple]:
    """A cross-pair table of ``pair`` on every grid row of ``panel``: (names, batch, online, the online
    step's arrays and parameters)."""
    settings, n, empty = Settings(), len(panel.ts_ns), np.empty(0)
    inp = PairInputs(ts_ns=panel.ts_ns, open=empty, high=empty, low=empty, close=empty, volume=empty, bid=empty,
                     ask=empty, idx=empty, idx_open=empty, idx_high=empty, idx_low=empty, bqx=empty, day_tokyo=empty,
                     day_london=empty, day_ny=empty, day_fx=empty, pair=pair, panel=panel, panel_rows=np.arange(n))
    names = FAMILIES[table].names(settings)
    block = FAMILIES[table].compute(inp, settings)
    online = FAMILIES[table].online
    run = online.runtime(settings)
    params = online.params(settings) + online.pair_params(pair, panel.pairs)
    if online.panel_inputs is None:
        arrays = [np.ascontiguousarray(getattr(panel, k)) for k in run.series]
    else:  # a declared table: the pair's columns, its state carried over every grid row
        where = online.panel_inputs(pair, panel.pairs)
        arrays = [np.ascontiguousarray(getattr(panel, where[k][0])[:, where[k][1]]) if where[k][1] >= 0
                  else np.full(n, np.nan) for k in run.series]
        params = online.kernel(settings).coerce(params)
    state = np.zeros(run.state_size)
    run.init(state)
    got = np.empty((n, len(names)))
    for k in range(n):
        run.step(k, *arrays, *params, state, got[k])
    return names, np.column_stack([block[k] for k in names]), got, arrays, params


def _differ(names: list[str], got: np.ndarray, want: np.ndarray) -> list[str]:
    close = np.isclose(got, want, rtol=1e-6, atol=1e-9, equal_nan=True)
    return [f"{names[j]} (row {np.flatnonzero(~close[:, j])[0]})" for j in np.flatnonzero(~close.all(axis=0))]


@pytest.mark.parametrize("table", PANEL)
def test_cross_pair_kernels_equal_the_batch_table_through_stale_quotes(stale_panel, table):
    """Where every pair of a currency is stale its strength is exactly 0 (not pinv's 1e-16 noise),
    flat windows are NaN in both forms and equal sums rank as ties in both."""
    from bqx.pairs import CURRENCIES

    assert np.all(stale_panel.g[2600:2900, CURRENCIES.index("AUD")] == 0.0)
    for pair in ("eurusd", "gbpusd", "audnzd"):
        names, want, got, _, _ = _panel_both_ways(stale_panel, table, pair)
        bad = _differ(names, got, want)
        assert not bad, f"{table} for {pair}: {', '.join(bad[:8])}"


@pytest.mark.parametrize("table", PANEL)
@pytest.mark.parametrize("pair", ["eurusd", "audnzd"])
def test_each_cross_pair_kernel_equals_the_batch_table_on_every_grid_row(panel, table, pair):
    """The cross-pair kernels over all 28 pairs' grid, row for row, for a USD pair and a cross; a
    probe row is recomputed with every later grid row replaced by noise and must not move."""
    settings, n = Settings(), len(panel.ts_ns)
    names, want, got, arrays, params = _panel_both_ways(panel, table, pair)
    online = FAMILIES[table].online
    bad = _differ(names, got, want)
    assert not bad, f"{table} for {pair}: {len(bad)} feature(s) differ from the batch table: {', '.join(bad[:8])}"
    assert np.isfinite(got[FAMILIES[table].warmup(settings):]).mean() > 0.9
    k = n - 500
    rng = np.random.default_rng(5)
    noisy = [a.copy() for a in arrays]
    for a in noisy:
        a[k + 1:] += rng.standard_normal(a[k + 1:].shape)
    probe = np.empty(len(names))
    run = online.runtime(settings)
    state = np.zeros(run.state_size)
    run.init(state)
    for i in range(k + 1) if run.state_size else (k,):  # a stateful kernel replays the rows up to k
        run.step(i, *noisy, *params, state, probe)
    np.testing.assert_array_equal(probe, got[k], err_msg=f"{table}: grid row {k} moved with later rows")


def test_market_and_engine_with_every_table_follow_the_batch_engine(market_bars, panel, monkeypatch):
    """All 25 tables for one pair, the market advanced minute by minute from every pair's bars (with
    its buffers compacting on the way), equal extract's tables on the same bars."""
    monkeypatch.setattr("bqx.serving.engine.COMPACT_EVERY", 16)
    monkeypatch.setattr("bqx.serving.market.COMPACT_EVERY", 16)
    settings = Settings()
    _, inp = pair_inputs(market_bars["eurusd"], settings, "eurusd", panel=panel)
    want = {f"{t}.{k}": v for t in ONLINE for k, v in FAMILIES[t].compute(inp, settings).items()}
    grid = panel.ts_ns
    cut = grid[-25]
    before = {p: b[b["ts_utc"].astype("int64") < cut] for p, b in market_bars.items()}
    market = Market(before, settings, market_keep(settings))
    engine = PairEngine("eurusd", before["eurusd"], ONLINE, settings, max_lag=61, market=market)
    eur_ts = market_bars["eurusd"]["ts_utc"].astype("int64").to_numpy()
    checked = 0
    for t in grid[-25:]:
        minute = {p: b[b["ts_utc"].astype("int64") == t] for p, b in market_bars.items()}
        assert market.advance_bars(minute) == 1
        if len(minute["eurusd"]):
            engine.update(_bar(minute["eurusd"].iloc[0]), int(t))
            row = int(np.searchsorted(eur_ts, t))
            history = engine.history
            got = np.array([history[k][-1] for k in want])
            exp = np.array([want[k][row] for k in want])
            close = np.isclose(got, exp, rtol=1e-6, atol=1e-9, equal_nan=True)
            assert close.all(), [k for k, ok in zip(want, close, strict=True) if not ok][:8]
            checked += 1
    assert checked >= 20 and len(want) == 1080 and np.isfinite(got).mean() > 0.95
    np.testing.assert_array_equal(market.ts[: market.n], grid[-market.n:])
    per_pair, market_bytes = state_bytes(settings, len(want), 61)  # what bqx plan charges the endpoint
    assert engine.nbytes <= per_pair and market.nbytes <= market_bytes


@pytest.mark.parametrize("table", ["error_correction", "correlation_idx"])
def test_a_stateful_cross_pair_table_follows_grid_rows_the_pair_has_no_bar_at(market_bars, monkeypatch, table):
    """error_correction (declared) and correlation_idx (window sums) carry state over every grid row. Here
    eurgbp has no bar for 2,200 minutes, longer than the market keeps, while the other pairs trade and the
    market compacts (every 16 rows): the table steps the rows compaction drops before they go, and at
    eurgbp's next bars it equals extract's table."""
    monkeypatch.setattr("bqx.serving.market.COMPACT_EVERY", 16)
    settings, pair = Settings(), "eurgbp"
    bars = dict(market_bars)
    times = {p: b["ts_utc"].astype("int64").to_numpy() for p, b in bars.items()}
    grid = np.unique(np.concatenate(list(times.values())))
    keep = bars[pair][(times[pair] <= grid[-2230]) | (times[pair] > grid[-30])]
    bars[pair], times[pair] = keep.reset_index(drop=True), keep["ts_utc"].astype("int64").to_numpy()
    panel = build_panel(bars, settings)
    _, inp = pair_inputs(bars[pair], settings, pair, panel=panel)
    want = FAMILIES[table].compute(inp, settings)
    cut = grid[-2240]
    market = Market({p: b[times[p] < cut] for p, b in bars.items()}, settings, market_keep(settings))
    engine = PairEngine(pair, bars[pair][times[pair] < cut], [table], settings, max_lag=61,
                        market=market)
    offset, checked = market.offset, 0
    closes = {p: b["close"].to_numpy() for p, b in bars.items()}
    for t in grid[-2240:]:
        market.advance(int(t), {p: float(closes[p][i]) for p in bars
                                for i in np.flatnonzero(times[p] == t)})
        row = np.flatnonzero(times[pair] == t)
        if len(row):
            engine.update(_bar(bars[pair].iloc[row[0]]), int(t))
            got = np.array([engine.history[f"{table}.{k}"][-1] for k in want])
            np.testing.assert_allclose(got, [want[k][row[0]] for k in want], rtol=1e-6, atol=1e-9, equal_nan=True)
            checked += 1
    assert market.offset > offset + market_keep(settings) and checked == 40 and np.isfinite(got).all()


def test_engine_advances_bar_by_bar_through_buffer_compaction(bars, batch, monkeypatch):
    """Seeded from history, then one bar at a time; the buffers compact twice on the way (as they do
    every few thousand bars in a server), and every feature stays the batch value."""
    monkeypatch.setattr("bqx.serving.engine.COMPACT_EVERY", 16)
    n = len(bars)
    n0 = n - STEPS
    engine = PairEngine("eurusd", bars.iloc[:n0], PER_PAIR, Settings(), max_lag=240)
    assert set(engine.history) == set(batch) and len(batch) > 750
    for i in range(n0, n):
        engine.update(_bar(bars.iloc[i]), int(bars["ts_utc"].iloc[i].value))
        history = engine.history
        got = np.array([history[name][-1] for name in batch])
        want = np.array([batch[name][i] for name in batch])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, equal_nan=True,
                                   err_msg=f"row {i}: " + ", ".join(
                                       name for name, g, w in zip(batch, got, want, strict=True)
                                       if not np.isclose(g, w, rtol=1e-6, atol=1e-9, equal_nan=True))[:500])
        # lags are read from the kept rows: the value 60 bars back is the batch value there
        assert engine.row(["technical_idx.rsi_14_lag60"])[0] == pytest.approx(batch["technical_idx.rsi_14"][i - 60],
                                                                               rel=1e-6, nan_ok=True)
    assert np.isfinite(got).mean() > 0.95


def _bars_json(frame) -> list[dict]:
    out = frame.assign(ts_utc=frame["ts_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return json.loads(out.to_json(orient="records"))


def test_raw_bars_requests_predict_from_online_features(bars, batch, tmp_path):
    names = ["technical_idx.rsi_14", "technical_bqx.rsi_14_lag60", "moving_avg_idx.ema60_dist",
             "event_regime.rows_since_shock", "statistics_bqx.w60_skew", "bqx.w15_bqx_return_lag61"]
    names = [n for n in names if parse(n).base in batch]
    assert len(names) >= 5
    path = synthetic_model(tmp_path / "eurusd.tar.gz", "eurusd", names, rows=400, iterations=20)
    app = App(ServeConfig(), ModelStore())
    app.store.load("eurusd", str(path))
    n = len(bars)
    first = app.invoke("eurusd", json.dumps({"bars": _bars_json(bars.iloc[: n - 3])}).encode(), "application/json")
    model = load_tarball(path)
    for step, i in enumerate(range(n - 3, n)):
        out = first if step == 0 else app.invoke(
            "eurusd", json.dumps({"bars": _bars_json(bars.iloc[i - 5: i])}).encode(), "application/json")
        row = n - 4 + step  # the latest bar the request carried
        x = [batch[parse(f).base][row - parse(f).lag] for f in names]
        assert out["predictions"][0]["ts_utc"].startswith(str(bars["ts_utc"].iloc[row])[:19].replace(" ", "T"))
        assert out["predictions"][0]["prediction"] == pytest.approx(model.predict(np.array([x]))[0], rel=1e-9)


def test_market_requests_predict_from_cross_pair_features(market_bars, panel, tmp_path):
    """A model with cross-pair inputs: the first request carries every pair's history as {pair: [bars]},
    each later one the new minute of every pair; predictions equal the model on extract's features
    (scale-free ones here: the request's history starts later than the batch's, see the baseline note)."""
    settings = Settings()
    _, inp = pair_inputs(market_bars["gbpjpy"], settings, "gbpjpy", panel=panel)
    names = ["correlation_idx.corr240_usd", "cross_sectional_panel.disp60_lag60", "cross_pair.beta60",
             "error_correction.leg1_z240", "technical_bqx.rsi_14", "correlation_bqx.min_corr60_lag61"]
    want = {n: FAMILIES[parse(n).table].compute(inp, settings)[parse(n).base.split(".", 1)[1]]
            for n in names}
    path = synthetic_model(tmp_path / "gbpjpy.tar.gz", "gbpjpy", names, rows=400, iterations=20)
    model = load_tarball(path)
    app = App(ServeConfig(), ModelStore())
    app.store.load("gbpjpy", str(path))
    grid = panel.ts_ns
    cut = grid[-4]
    start = grid[-1700]  # enough history for every window (the request would exceed the size limit with all)
    first = {p: _bars_json(b[(b["ts_utc"].astype("int64") >= start) & (b["ts_utc"].astype("int64") < cut)])
             for p, b in market_bars.items()}
    out = app.invoke("gbpjpy", json.dumps({"bars": first}).encode(), "application/json")
    ts = market_bars["gbpjpy"]["ts_utc"].astype("int64").to_numpy()
    for step, t in enumerate(grid[-4:]):
        if step:
            minute = {p: _bars_json(b[b["ts_utc"].astype("int64") == t]) for p, b in market_bars.items()}
            out = app.invoke("gbpjpy", json.dumps({"bars": {p: v for p, v in minute.items() if v}}).encode(),
                             "application/json")
        row = int(np.searchsorted(ts, t if step else grid[-5], side="right")) - 1
        x = [want[n][row - parse(n).lag] for n in names]
        assert np.isfinite(x).all()
        assert out["predictions"][0]["prediction"] == pytest.approx(model.predict(np.array([x]))[0], rel=1e-9)
    with pytest.raises(PayloadError) as err:
        app.invoke("gbpjpy", json.dumps({"bars": _bars_json(market_bars["gbpjpy"].iloc[-2:])}).encode(),
                   "application/json")
    assert err.value.status == 422 and "correlation_idx.corr240_usd" in err.value.message
    with pytest.raises(PayloadError) as err:
        app.invoke("gbpjpy", json.dumps({"bars": {"gbpjpy": [], "xxxyyy": []}}).encode(), "application/json")
    assert err.value.status == 400


def test_request_bars_fast_path_matches_the_file_rules(bars):
    """Well-formed requests skip pandas; the result equals validate_bars', and anything unusual falls
    back to it so the messages are the bar files' messages."""
    raw = [{k: v for k, v in b.items() if k != "volume"} for b in _bars_json(bars.iloc[:50])]
    fast = parse_bars(raw, "eurusd")
    slow = validate_bars(pd.DataFrame(raw), "request", "eurusd")
    np.testing.assert_array_equal(fast.ns, pd.DatetimeIndex(slow["ts_utc"]).asi8)
    for col, values in fast.values.items():
        np.testing.assert_array_equal(values, slow[col].to_numpy())
    cases = [({"close": "abc"}, "close", "'abc' is not a finite number"),
             ({"ts_utc": "2024-01-02T00:03:00"}, "ts_utc", "no UTC offset"),
             ({"ts_utc": "2024-01-02T00:03:30Z"}, "ts_utc", "not on a whole minute"),
             ({"low": 0.0}, "low", "must be > 0")]
    for change, field, text in cases:
        broken = [dict(b) for b in raw]
        broken[3].update(change)
        with pytest.raises(PayloadError) as err:
            parse_bars(broken, "eurusd")
        assert err.value.status == 400 and "row 3" in err.value.message and field in err.value.message
        assert text in err.value.message, err.value.message
    mixed = [dict(b) for b in raw]
    mixed[3]["volume"] = 1.0  # a column the other bars lack: the bars without it are the ones named
    with pytest.raises(PayloadError) as err:
        parse_bars(mixed, "eurusd")
    assert err.value.status == 400 and "row 0" in err.value.message and "'volume'" in err.value.message


def test_market_requests_are_checked_in_one_pass_and_name_the_pair_and_row(bars):
    """A minute of every pair is checked over all pairs at once; a pair that breaks a rule is named with
    its own row, exactly as a request with that pair alone would be."""
    from bqx.serving.request_bars import parse_market_bars

    raw = [{k: v for k, v in b.items() if k != "volume"} for b in _bars_json(bars.iloc[:3])]
    market = {p: [dict(b) for b in raw] for p in ("eurusd", "usdjpy", "gbpusd")}
    frames = parse_market_bars(market)
    assert list(frames) == list(market) and all(len(f) == 3 for f in frames.values())
    for p, f in frames.items():  # parsed together, each pair's bars are what a request of it alone gives
        alone = parse_bars(market[p], p)
        assert f.ns.tolist() == alone.ns.tolist()
        assert {c: v.tolist() for c, v in f.values.items()} == {c: v.tolist() for c, v in alone.values.items()}
    for change, field, text in (({"high": 0.5}, "high", "high < low"),
                                ({"ts_utc": raw[1]["ts_utc"]}, "ts_utc", "duplicate timestamp"),
                                ({"close": float("inf")}, "close", "not a finite number")):
        broken = {p: [dict(b) for b in bars_] for p, bars_ in market.items()}
        broken["usdjpy"][2].update(change)
        with pytest.raises(PayloadError) as err:
            parse_market_bars(broken)
        with pytest.raises(PayloadError) as alone:
            parse_bars(broken["usdjpy"], "usdjpy")
        assert err.value.message == alone.value.message
        assert "usdjpy" in err.value.message and "row 2" in err.value.message and field in err.value.message
        assert text in err.value.message, err.value.message
    # each pair's times increase on their own: one pair's last minute before the next pair's first is fine
    shifted = {"eurusd": market["eurusd"], "usdjpy": market["usdjpy"][:1]}
    assert len(parse_market_bars(shifted)["usdjpy"]) == 1
    # volume missing in one pair and present in another: each pair is checked alone, and both pass
    with_volume = {"eurusd": [dict(b, volume=1.0) for b in raw], "usdjpy": [dict(b, volume=float("nan")) for b in raw]}
    assert set(parse_market_bars(with_volume)) == {"eurusd", "usdjpy"}


def test_history_accumulates_across_requests_until_the_state_can_start(bars, tmp_path):
    """Requests are capped at a few MB (SageMaker's real-time limit): history may arrive in pieces.
    Each short piece is kept and answered 202 with the count so far; the piece that completes it
    seeds the state and predicts exactly as one request with the whole history does."""
    names = ["technical_idx.rsi_14", "reg_idx.w60_r2_lag60", "multi_scale.m60_rsi14"]
    path = synthetic_model(tmp_path / "m.tar.gz", "eurusd", names, rows=300, iterations=10)
    pieces, whole = App(ServeConfig(), ModelStore()), App(ServeConfig(), ModelStore())
    for app in (pieces, whole):
        app.store.load("m", str(path))
    n = len(bars)
    chunks = [(0, 1500), (1400, 3000), (3000, n - 1)]  # overlapping rows are taken once
    for i, (lo, hi) in enumerate(chunks):
        status, body = pieces.handle("POST", "/models/m/invoke", {"content-type": "application/json"},
                                     json.dumps({"bars": _bars_json(bars.iloc[lo:hi])}).encode())
        if i < 2:
            assert status == 202 and body["status"] == "warming up" and body["bars"] == hi, body
            assert body["needed"] > hi and "keep sending bars" in body["message"]
    assert status == 200
    status, one = whole.handle("POST", "/models/m/invoke", {"content-type": "application/json"},
                               json.dumps({"bars": _bars_json(bars.iloc[: n - 1])}).encode())
    assert status == 200 and body["predictions"] == one["predictions"]


def test_model_package_snapshot_serves_level_and_regime_features_from_a_short_late_history(bars, tmp_path):
    """Served from the last 3,300 bars only, a model whose package carries extract's online_state
    (baseline close, HMM fit) gets the values the batch engine computes over the whole history, level
    features (on the training rate_idx scale) and regime probabilities included; without it they differ."""
    settings = Settings()
    b, inp = pair_inputs(bars, settings, "eurusd")
    state = json.loads(json.dumps(online_state(b, inp, settings)))
    names = ["technical_idx.macd_12_26_9", "reg_idx.w60_c_coef", "bqx.core_rate_idx_lag60", "hmm_regime.p_high",
             "hmm_regime.exp_var_lag60", "moving_avg_idx.ema60_dist"]
    want = {n: FAMILIES[parse(n).table].compute(inp, settings)[parse(n).base.split(".", 1)[1]]
            for n in names}
    row = len(bars) - 1
    x = np.array([want[n][row - parse(n).lag] for n in names])
    late = json.dumps({"bars": _bars_json(bars.iloc[-3300:])}).encode()
    results = {}
    for label, snap in (("with", state), ("without", None)):
        path = synthetic_model(tmp_path / f"{label}.tar.gz", "eurusd", names, rows=300, iterations=10,
                               online_state=snap)
        app = App(ServeConfig(), ModelStore())
        app.store.load("m", str(path))
        app.invoke("m", late, "application/json")
        engine = next(iter(app._online.engines.values()))
        results[label] = engine.row(names)
    np.testing.assert_allclose(results["with"], x, rtol=1e-6, atol=1e-9)
    assert not np.allclose(results["without"][:3], x[:3], rtol=1e-6)  # levels on another baseline
    assert state["hmm"]["fit_rows"] == settings.features.hmm_fit_rows and len(state["hmm"]["trans"]) == 3


def test_raw_bars_errors_name_the_problem(bars, tmp_path):
    app = App(ServeConfig(), ModelStore())
    online = synthetic_model(tmp_path / "a.tar.gz", "eurusd", ["technical_idx.rsi_14", "reg_idx.w60_r2"], rows=300,
                             iterations=10)
    panel = synthetic_model(tmp_path / "b.tar.gz", "eurusd", ["cross_pair.f0", "hmm_regime.p_high"], rows=300,
                            iterations=10)
    app.store.load("a", str(online))
    app.store.load("b", str(panel))
    few = json.dumps({"bars": _bars_json(bars.iloc[:50])}).encode()
    broken = _bars_json(bars.iloc[:3000])
    broken[7]["high"] = broken[7]["low"] / 2
    with pytest.raises(PayloadError) as err:
        app.invoke("a", json.dumps({"bars": broken}).encode(), "application/json")
    assert err.value.status == 400 and "row 7" in err.value.message and "high" in err.value.message
    with pytest.raises(PayloadError) as err:
        app.invoke("b", few, "application/json")
    assert err.value.status == 422 and "cross_pair.f0" in err.value.message
    made_up = synthetic_model(tmp_path / "c.tar.gz", "eurusd", ["technical_idx.f000", "technical_idx.rsi_14"],
                              rows=300, iterations=10)
    app.store.load("c", str(made_up))
    with pytest.raises(PayloadError) as err:
        app.invoke("c", json.dumps({"bars": _bars_json(bars.iloc[:3000])}).encode(), "application/json")
    assert err.value.status == 422 and "technical_idx.f000" in err.value.message


def test_a_subset_run_serves_exactly_its_pairs_and_equals_batch_minute_by_minute(market_bars, tmp_path):
    """A model trained on a 3-pair panel: the package records the panel's pairs, requests carry exactly
    those, and online predictions equal the model on extract's features of that panel, minute by minute."""
    pairs = ["eurusd", "usdjpy", "eurjpy"]
    subset = {p: market_bars[p] for p in pairs}
    settings = Settings()
    panel = build_panel(subset, settings)
    b, inp = pair_inputs(subset["eurjpy"], settings, "eurjpy", panel=panel)
    state = online_state(b, inp, settings)
    assert sorted(state["pairs"]) == sorted(pairs)
    names = ["correlation_idx.corr240_usd", "cross_sectional_panel.disp60_lag60", "cross_pair.beta60",
             "error_correction.leg1_z240", "technical_bqx.rsi_14"]
    want = {n: FAMILIES[parse(n).table].compute(inp, settings)[parse(n).base.split(".", 1)[1]]
            for n in names}
    path = synthetic_model(tmp_path / "eurjpy.tar.gz", "eurjpy", names, rows=400, iterations=20,
                           online_state=json.loads(json.dumps(state)))
    model = load_tarball(path)
    app = App(ServeConfig(), ModelStore())
    app.store.load("eurjpy", str(path))
    grid = panel.ts_ns
    cut, start = grid[-6], grid[-1700]
    first = {p: _bars_json(x[(x["ts_utc"].astype("int64") >= start) & (x["ts_utc"].astype("int64") < cut)])
             for p, x in subset.items()}
    out = app.invoke("eurjpy", json.dumps({"bars": first}).encode(), "application/json")  # 3 pairs: accepted
    ts = subset["eurjpy"]["ts_utc"].astype("int64").to_numpy()
    for t in [None, *grid[-6:]]:  # the seeding request's last minute, then every minute after it
        if t is not None:
            minute = {p: _bars_json(x[x["ts_utc"].astype("int64") == t]) for p, x in subset.items()}
            out = app.invoke("eurjpy", json.dumps({"bars": {p: v for p, v in minute.items() if v}}).encode(),
                             "application/json")
        row = int(np.searchsorted(ts, grid[-7] if t is None else t, side="right")) - 1
        x = [want[n][row - parse(n).lag] for n in names]
        assert np.isfinite(x).all()
        assert out["predictions"][0]["prediction"] == pytest.approx(model.predict(np.array([x]))[0], abs=1e-6)
    with pytest.raises(PayloadError) as err:  # the package's pairs, not the 28 defaults, are what it needs
        app.invoke("eurjpy", json.dumps({"bars": {"eurjpy": first["eurjpy"][-3:]}}).encode(), "application/json")
    assert err.value.status == 422 and "eurusd" in err.value.message and "gbpusd" not in err.value.message
