"""Batch prediction (`bqx predict`): every bar of a span for every pair of a repository, equal to what a
server seeded with the same bars answers, minute by minute; warm-up bars are history only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bqx.config import Settings
from bqx.extract import online_state, pair_inputs
from bqx.panel import build_panel
from bqx.predict import run
from bqx.sample import generate, write_sample
from bqx.serving.config import ServeConfig
from bqx.serving.models import ModelStore
from bqx.serving.server import App
from bqx.serving.synthetic import synthetic_model

PAIRS = ["eurusd", "usdjpy", "eurjpy"]
# per-pair, level (rate_idx baseline), regime (HMM fit) and panel features, some lagged
NAMES = ["technical_idx.rsi_14", "moving_avg_idx.ema60_dist", "reg_idx.w60_c_coef", "hmm_regime.p_high",
         "hmm_regime.exp_var_lag60", "statistics_bqx.w60_skew", "correlation_idx.corr240_usd",
         "cross_pair.beta60", "technical_bqx.rsi_14_lag60"]


def _bars_json(frame: pd.DataFrame) -> list[dict]:
    out = frame.assign(ts_utc=frame["ts_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return json.loads(out.to_json(orient="records"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A repository of two models trained on the first 3 days of a 3-pair panel, packaged as a run's are
    (extract's online_state: baseline close, HMM fit, the panel's pairs)."""
    root = tmp_path_factory.mktemp("predict")
    train = generate(PAIRS, days=3, seed=21)
    settings = Settings()
    panel = build_panel(train, settings)
    entries = {}
    for pair in ("eurusd", "eurjpy"):
        b, inp = pair_inputs(train[pair], settings, pair, panel=panel)
        state = json.loads(json.dumps(online_state(b, inp, settings)))
        synthetic_model(root / "repo" / f"{pair}.tar.gz", pair, NAMES, rows=400, iterations=20, online_state=state)
        entries[pair] = {"target_model": f"{pair}.tar.gz"}
    (root / "repo" / "manifest.json").write_text(json.dumps({"models": entries}))
    return root / "repo"


def test_batch_predictions_equal_the_servers_minute_by_minute(repo, tmp_path):
    later = generate(PAIRS, days=3, seed=22, start="2024-07-15")  # bars the models never saw
    for pair, frame in later.items():
        frame.to_parquet(tmp_path / f"{pair}.parquet", index=False)
    summary = run(tmp_path, repo, tmp_path / "out" / "predictions.parquet")
    got = pd.read_parquet(summary.path)
    assert list(got.columns) == ["ts_utc", "pair", "prediction", "target_model"]
    assert sorted(got["pair"].unique()) == ["eurjpy", "eurusd"] and summary.rows == len(got)
    for p in summary.pairs:  # every bar after the warm-up, none before it
        assert p.rows + p.warmup == len(later[p.pair]) and p.warmup > 0
    assert np.isfinite(got["prediction"]).all()

    # the server, seeded with the first 2 days and stepped through the next minutes, answers the same
    app = App(ServeConfig(), ModelStore())
    app.store.load("eurjpy", str(repo / "eurjpy.tar.gz"))
    grid = np.unique(np.concatenate([f["ts_utc"].astype("int64").to_numpy() for f in later.values()]))
    cut = grid[2 * 1440]
    seed = {p: _bars_json(f[f["ts_utc"].astype("int64") < cut]) for p, f in later.items()}
    mine = got[got["pair"] == "eurjpy"].set_index("ts_utc")["prediction"]
    out = app.invoke("eurjpy", json.dumps({"bars": seed}).encode(), "application/json")
    checked = 0
    for t in [None, *grid[2 * 1440: 2 * 1440 + 5]]:
        if t is not None:
            minute = {p: _bars_json(f[f["ts_utc"].astype("int64") == t]) for p, f in later.items()}
            out = app.invoke("eurjpy", json.dumps({"bars": {p: v for p, v in minute.items() if v}}).encode(),
                             "application/json")
        (answer,) = out["predictions"]
        ts = pd.Timestamp(answer["ts_utc"])
        assert answer["prediction"] == pytest.approx(mine[ts], abs=1e-6), ts
        checked += 1
    assert checked == 6


def test_since_and_pairs_choose_the_rows_and_errors_name_the_cause(repo, tmp_path):
    write_sample(tmp_path / "bars", PAIRS, days=3, seed=23, start="2024-07-15")
    summary = run(tmp_path / "bars", repo, tmp_path / "p.parquet", pairs=["eurusd"], since="2024-07-17")
    got = pd.read_parquet(summary.path)
    assert set(got["pair"]) == {"eurusd"} and got["ts_utc"].min() >= pd.Timestamp("2024-07-17", tz="UTC")
    with pytest.raises(ValueError, match=r"pair gbpusd: no model in .* \(it has eurjpy, eurusd\)"):
        run(tmp_path / "bars", repo, tmp_path / "x.parquet", pairs=["gbpusd"])
    (tmp_path / "bars" / "usdjpy.parquet").unlink()
    with pytest.raises(ValueError, match=r"eurusd: its model's cross-pair features were computed on a panel of "
                                         r"eurusd, eurjpy, usdjpy; no bars for usdjpy"):
        run(tmp_path / "bars", repo, tmp_path / "x.parquet", pairs=["eurusd"])
    with pytest.raises(FileNotFoundError, match="not a model repository"):
        run(tmp_path / "bars", tmp_path, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
