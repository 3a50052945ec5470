"""The SageMaker training contract, run for real as a subprocess against a temp /opt/ml tree."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bqx.deploy import ModelRef, deploy_local
from bqx.model_package import load_tarball
from bqx.training.evaluate import evaluate
from bqx.training.local import TrainingFailed, train_local

FEATURES = ["reg_idx.w60_r2", "bqx.w15_bqx_return", "technical_bqx.rsi_14"]


def _channels(tmp: Path, n: int = 400) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    sel = {"features": FEATURES, "target": "target_bqx60_h60", "catalog_version": "c0ffee", "settings_hash": "5e77",
           "pair": "eurusd"}
    out = {}
    for ch in ("train", "validation"):
        x = rng.standard_normal((n, 3)).astype(np.float32)
        df = pd.DataFrame(x, columns=FEATURES)
        df["target_bqx60_h60"] = 0.5 * x[:, 0] - 0.2 * x[:, 1] + 0.01 * rng.standard_normal(n)
        (tmp / ch).mkdir(parents=True)
        df.to_parquet(tmp / ch / f"{ch}.parquet")
        out[ch] = tmp / ch
    (tmp / "train" / "selection.json").write_text(json.dumps(sel))
    return out


HP = {"iterations": "60", "depth": "3", "learning_rate": "0.3", "thread_count": "1", "random_seed": "1"}


def test_entrypoint_trains_and_model_tarball_loads(tmp_path: Path):
    meta = train_local(_channels(tmp_path / "ch"), HP, tmp_path / "model.tar.gz")
    assert meta["n_features"] == 3 and meta["catalog_version"] == "c0ffee"
    loaded = load_tarball(tmp_path / "model.tar.gz")
    assert loaded.features == FEATURES
    test = pd.read_parquet(tmp_path / "ch" / "validation" / "validation.parquet")
    m = evaluate(test["target_bqx60_h60"].to_numpy(), loaded.predict(test[FEATURES]))
    assert m["model_r2"] > 0.8 and m["model_rmse"] < m["zero_rmse"]


def test_failure_reason_is_written_and_exit_is_nonzero(tmp_path: Path):
    channels = _channels(tmp_path / "ch")
    with pytest.raises(TrainingFailed, match="unknown hyperparameter 'depht'"):
        train_local(channels, {**HP, "depht": "3"}, tmp_path / "model.tar.gz")
    assert not (tmp_path / "model.tar.gz").exists()
    # the raw contract: output/failure holds the reason, exit code 1
    root = tmp_path / "optml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"iterations": "ten"}))
    for ch, src in channels.items():
        (root / "input" / "data").mkdir(exist_ok=True)
        os.symlink(src, root / "input" / "data" / ch)
    env = {**os.environ, "BQX_OPT_ML": str(root)}
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "train"], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "iterations" in (root / "output" / "failure").read_text()


def test_local_deploy_is_idempotent(tmp_path: Path):
    train_local(_channels(tmp_path / "ch"), HP, tmp_path / "m" / "model.tar.gz")
    refs = [ModelRef("eurusd", tmp_path / "m" / "model.tar.gz", {"catalog_version": "c0ffee"})]
    first = deploy_local(refs, tmp_path / "repo")
    stamp = (tmp_path / "repo" / "manifest.json").stat().st_mtime_ns
    second = deploy_local(refs, tmp_path / "repo")
    assert first["changed"] == ["eurusd"] and second["changed"] == []
    assert (tmp_path / "repo" / "manifest.json").stat().st_mtime_ns == stamp
    assert load_tarball(tmp_path / "repo" / "eurusd.tar.gz").features == FEATURES


def test_evaluation_reports_every_metric_next_to_its_baselines():
    rng = np.random.default_rng(3)
    n, h = 6000, 60
    fwd = rng.standard_normal(n) * 5  # forward returns, bps
    y = -fwd / 100 + rng.standard_normal(n) * 0.001  # v1: a high BQX ahead means the price fell
    m = evaluate(y, y, bqx_now=np.roll(y, h), fwd_ret_bps=fwd, horizon=h, sign=-1, cost_bps=1.0)
    assert m["model_directional_accuracy"] > 0.95 and m["model_hit_rate"] > 0.8
    assert m["model_sharpe"] > 5 * abs(m["persistence_sharpe"])
    assert m["zero_trades"] == 0 and m["zero_sharpe"] == 0 and m["zero_directional_accuracy"] == 0.5
    assert m["model_trades"] == len(range(0, n, h))
    # costs are charged: the same forecast with a huge cost loses money
    costly = evaluate(y, y, fwd_ret_bps=fwd, horizon=h, sign=-1, cost_bps=100.0)
    assert costly["model_sharpe"] < 0 and costly["model_pnl_per_trade_bps"] < 0
    for name in ("rmse", "mae", "r2", "directional_accuracy", "sharpe"):
        assert {f"model_{name}", f"zero_{name}", f"persistence_{name}"} <= set(m)
