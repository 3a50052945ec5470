"""The SageMaker training contract, run for real as a subprocess against a temp /opt/ml tree."""

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bqx import deploy
from bqx.config import RegistrySettings, Settings
from bqx.deploy import ModelRef
from bqx.model_package import load_tarball
from bqx.reports import deploy_markdown
from bqx.train.evaluate import evaluate, sharpe_text, trading_metrics
from bqx.train.local import TrainingFailed, train_local

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


def test_fit_stride_thins_the_fit_but_not_early_stopping_or_the_drift_reference(tmp_path: Path):
    channels = _channels(tmp_path / "ch")
    meta = train_local(channels, {**HP, "fit_stride": "3"}, tmp_path / "model.tar.gz")
    assert (meta["train_rows"], meta["fit_rows"], meta["validation_rows"]) == (400, 134, 400)
    loaded = load_tarball(tmp_path / "model.tar.gz")
    assert len(loaded.reference) == 400  # the drift reference samples every training row
    with pytest.raises(TrainingFailed, match="'fit_stride'=0: must be a positive integer"):
        train_local(channels, {**HP, "fit_stride": "0"}, tmp_path / "bad.tar.gz")


def test_channel_files_are_linked_on_one_file_system_and_copied_across(tmp_path: Path):
    from bqx.train.local import _link_or_copy

    src = tmp_path / "train.parquet"
    src.write_bytes(b"PAR1" * 8)
    _link_or_copy(str(src), str(tmp_path / "linked.parquet"))
    assert (tmp_path / "linked.parquet").stat().st_ino == src.stat().st_ino
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system at /dev/shm")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        _link_or_copy(str(src), str(Path(other) / "copied.parquet"))
        copied = Path(other) / "copied.parquet"
        assert copied.read_bytes() == src.read_bytes() and copied.stat().st_ino != src.stat().st_ino


def test_equal_inputs_give_byte_identical_packages(tmp_path: Path):
    """Two fits of the same data and settings: the same model.cbm (no GUID, no finish time), the same
    tarball (no times or owners in the tar and gzip headers), so the same served model_version."""
    from bqx.model_package import sha256_of
    from bqx.serving.models import load_model

    channels = _channels(tmp_path / "ch")
    hp = {**HP, "thread_count": "2"}
    first = train_local(channels, hp, tmp_path / "a" / "model.tar.gz")
    second = train_local(channels, hp, tmp_path / "b" / "model.tar.gz")
    assert first["train_seconds"] > 0 and "train_seconds" in second  # reported beside the package, not in it
    assert sha256_of(tmp_path / "a" / "model.tar.gz") == sha256_of(tmp_path / "b" / "model.tar.gz")
    assert load_model("a", str(tmp_path / "a" / "model.tar.gz")).version == \
        load_model("b", str(tmp_path / "b" / "model.tar.gz")).version
    with tarfile.open(tmp_path / "a" / "model.tar.gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == sorted(m.name for m in members)
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
        meta = json.loads(tar.extractfile("meta.json").read())
    assert "train_seconds" not in meta
    assert (tmp_path / "a" / "model.tar.gz").read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime


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
    ungated = Settings(registry=RegistrySettings(gate=False))  # no metrics here: the gate is tested in test_registry
    first = deploy.run(refs, "local", ungated, tmp_path / "repo")
    stamp = (tmp_path / "repo" / "manifest.json").stat().st_mtime_ns
    second = deploy.run(refs, "local", ungated, tmp_path / "repo", {"gbpusd": "failed at select: no rows"})
    assert first.repository.changed == ["eurusd"] and second.repository.changed == [] and first.endpoint is None
    report = deploy_markdown(second)
    assert "| eurusd | eurusd.tar.gz |" in report and "none (already deployed)" in report
    assert "- gbpusd: failed at select: no rows" in report
    with pytest.raises(ValueError, match=r"unknown deploy backend 'k8s' \(local, sagemaker, ack\)"):
        deploy.run(refs, "k8s", Settings(), tmp_path / "repo")
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
    # the zero forecast never trades: no Sharpe ratio, shown as n/a with its trade count
    assert m["zero_trades"] == 0 and np.isnan(m["zero_sharpe"]) and m["zero_directional_accuracy"] == 0.5
    assert sharpe_text(m, "zero") == "n/a (0 trades)" and "+-" in sharpe_text(m, "model")
    assert m["model_trades"] == len(range(0, n, h))
    # a perfect forecast: gains everywhere, no drawdown, no losses to divide by
    assert m["model_sortino"] > m["model_sharpe"] > 0 and m["model_max_drawdown_bps"] < 5
    assert m["model_profit_factor"] > 20 or np.isnan(m["model_profit_factor"])
    assert 0 < m["model_turnover"] <= 2 and m["model_avg_holding_bars"] >= h
    # costs are charged per change of position: a huge cost loses money
    costly = evaluate(y, y, fwd_ret_bps=fwd, horizon=h, sign=-1, cost_bps=100.0)
    assert costly["model_sharpe"] < 0 and costly["model_pnl_per_trade_bps"] < 0
    for name in ("rmse", "mae", "r2", "directional_accuracy", "sharpe", "sortino", "max_drawdown_bps",
                 "profit_factor", "turnover", "avg_holding_bars"):
        assert {f"model_{name}", f"zero_{name}", f"persistence_{name}"} <= set(m)


def test_position_costs_drawdown_and_holding_by_hand():
    from bqx.train.evaluate import holding_periods, period_pnl

    pos = np.array([1.0, 1.0, -1.0, 0.0, 1.0])
    pnl = period_pnl(pos, np.array([10.0, -4.0, -6.0, 3.0, 2.0]), cost_bps=2.0)
    # costs: enter 1 (1 bps), hold, flip (2 bps), exit (1 bps), enter (1 bps) and close at the end (1 bps)
    np.testing.assert_allclose(pnl, [9.0, -4.0, 4.0, -1.0, 0.0])
    np.testing.assert_array_equal(holding_periods(pos), [2, 1, 1])
    m = trading_metrics(np.repeat(pos, 3), np.repeat([10.0, -4.0, -6.0, 3.0, 2.0], 3), 3, 1, 2.0)
    assert m["max_drawdown_bps"] == pytest.approx(4.0)  # equity 9, 5, 9, 8, 8: the deepest fall is 9 -> 5
    assert m["profit_factor"] == pytest.approx(13.0 / 5.0) and m["avg_holding_bars"] == pytest.approx(4.0)
    assert m["trades"] == 4 and np.isnan(m["sharpe"])  # under 30 trades: no Sharpe
