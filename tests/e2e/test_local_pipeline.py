"""The whole pipeline through kfp.local (SubprocessRunner, no venv) on 3 pairs x 10 trading days."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bqx.config import RegistrySettings, Settings
from bqx.dataset import PairDataset
from bqx.kubeflow.local_run import run_local
from bqx.model_package import load_dir, load_tarball, unpacked
from bqx.registry.gate import APPROVED, decide
from bqx.sample import write_sample

PAIRS = ["eurusd", "usdjpy", "gbpusd"]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    write_sample(root / "bars", PAIRS, days=10, seed=42)
    t0 = time.perf_counter()
    result = run_local(root / "bars", root / "out", Settings(), PAIRS, echo=open(root / "progress.txt", "w"))
    result.wall = time.perf_counter() - t0
    return result


def test_runs_and_reports_progress(run):
    progress = (run.log_path.parents[3] / "progress.txt").read_text()
    for pair in PAIRS:
        assert f"train   {pair}" in progress and f"drift   {pair}" in progress


def test_every_model_loads_from_its_tarball_and_predicts(run):
    trains = run.find("train-model")
    assert sorted(t.pair for t in trains) == sorted(PAIRS)
    for task in trains:
        model = load_tarball(Path(task.artifacts["model"]["uri"]) / "model.tar.gz")
        dataset = next(t for t in run.find("select-features") if t.pair == task.pair).artifacts["dataset"]["uri"]
        features = next(t for t in run.find("extract-features") if t.pair == task.pair).artifacts["features"]["uri"]
        assert [p.name for p in Path(dataset).iterdir()] == ["selection.json"]  # a view of the features
        test = PairDataset.open(dataset, features).frames(("test",))["test"]
        pred = model.predict(test[model.features])
        assert len(model.features) == 250 and np.isfinite(pred).all() and pred.std() > 0
        with unpacked(Path(task.artifacts["model"]["uri"]) / "model.tar.gz") as d:  # what serving evaluates
            served = load_dir(d, with_reference=False, predictor="trees")
        assert type(served.model).__name__ == "ObliviousTrees"
        np.testing.assert_allclose(served.predict(test[model.features].to_numpy()), pred, rtol=0, atol=1e-6)
        m = task.artifacts["metrics"]["metadata"]
        assert {"model_rmse", "zero_rmse", "persistence_rmse", "wf_model_rmse", "wf_persistence_rmse"} <= set(m)
        assert m["rows"] == len(test) and m["wf_rows"] > len(test) and m["bar_interval_s"] == 60
        page = Path(task.artifacts["evaluation"]["uri"])
        assert page.stat().st_size < 2e6 and "Equity after cost" in page.read_text()
    repo = run.find("deploy-models")[0].artifacts["repository"]
    manifest = json.loads((Path(repo["uri"]) / "manifest.json").read_text())
    # the gate: deployed are exactly the pairs whose test RMSE beats zero and persistence; the others are
    # registered, rejected and named with the reason. On this seeded random walk which pairs pass is chance
    # (margins of 0.3-2% either way, moved by the last bits of a feature), so the test asks only that
    # both sides of the gate are taken
    approved = sorted(t.pair for t in trains if decide(t.artifacts["metrics"]["metadata"], RegistrySettings()).status
                      == APPROVED)
    assert sorted(manifest["models"]) == approved and 0 < len(approved) < len(PAIRS)
    assert sorted(repo["metadata"]["not_served"]) == sorted(set(PAIRS) - set(approved))
    assert all("does not beat" in why for why in repo["metadata"]["not_served"].values())
    for pair in approved:
        assert load_tarball(Path(repo["uri"]) / f"{pair}.tar.gz").features
        assert manifest["models"][pair]["registry_version"] == 1
    for pair in PAIRS:  # every model is registered, approved or not
        assert (Path(repo["uri"]) / "registry" / pair / "v0001" / "model.tar.gz").is_file()


def test_selection_quota_and_drift_sections(run):
    for task in run.find("select-features"):
        meta = task.artifacts["metrics"]["metadata"]
        assert meta["selected_idx"] >= 100 and meta["selected_bqx"] >= 100
    drifts = run.find("drift-report")
    assert sorted(t.pair for t in drifts) == sorted(PAIRS)
    for task in drifts:
        html = Path(task.artifacts["report"]["uri"]).read_text()
        assert "<h2>rate_idx features</h2>" in html and "<h2>BQX features</h2>" in html
        summary = json.loads(Path(task.artifacts["summary"]["uri"]).read_text())
        assert set(summary["domains"]) >= {"idx", "bqx"}
        metrics = task.artifacts["metrics"]["metadata"]
        assert "drift_index_idx" in metrics and "drift_index_bqx" in metrics


def test_corrupted_bar_file_fails_the_run_naming_file_row_field(tmp_path):
    write_sample(tmp_path / "bars", ["eurusd", "usdjpy"], days=1, seed=1)
    bad = tmp_path / "bars" / "usdjpy.parquet"
    df = pd.read_parquet(bad)
    df.loc[123, "close"] = np.nan
    df.to_parquet(bad, index=False)
    with pytest.raises(RuntimeError) as info:
        run_local(tmp_path / "bars", tmp_path / "out", Settings(), ["eurusd", "usdjpy"],
                  echo=open(tmp_path / "progress.txt", "w"))
    msg = str(info.value)
    assert msg.startswith("ingest-bars failed: invalid bars: ") and "\n" not in msg
    assert str(bad) in msg and "data row 123" in msg and "'close'" in msg


def test_a_pair_failing_mid_pipeline_does_not_stop_the_others(tmp_path, capsys):
    """A feed frozen at one price passes ingest, the panel, extract and lag, then its selection fails
    (CatBoost: all targets equal). The pair is recorded as failed at select and skipped after it; the
    other two train, get their drift reports and deploy; the repository and the summary name the failure."""
    from bqx.cli import summary_text

    pairs = ["eurusd", "usdjpy", "gbpusd"]
    write_sample(tmp_path / "bars", pairs, days=4, seed=3)
    frozen = pd.read_parquet(tmp_path / "bars" / "usdjpy.parquet")
    frozen[["open", "high", "low", "close"]] = 150.0
    frozen.to_parquet(tmp_path / "bars" / "usdjpy.parquet", index=False)
    ungated = Settings(registry=RegistrySettings(gate=False))  # about failures, not the gate
    result = run_local(tmp_path / "bars", tmp_path / "out", ungated, pairs, echo=open(tmp_path / "p.txt", "w"))
    repo = result.find("deploy-models")[0].artifacts["repository"]
    assert repo["metadata"]["pairs"] == ["eurusd", "gbpusd"]
    assert repo["metadata"]["failed"]["usdjpy"].startswith("failed at select: CatBoostError")
    assert sorted(json.loads((Path(repo["uri"]) / "manifest.json").read_text())["models"]) == ["eurusd", "gbpusd"]
    (train,) = [t for t in result.find("train-model") if t.pair == "usdjpy"]
    assert train.artifacts["model"]["metadata"]["failed_stage"] == "select"
    assert "failed at select" in Path(train.artifacts["model_card"]["uri"]).read_text()
    assert sorted(t.pair for t in result.find("drift-report") if "drift_index_idx" in t.artifacts["metrics"]["metadata"]
                  ) == ["eurusd", "gbpusd"]
    progress = (tmp_path / "p.txt").read_text()
    assert "select  usdjpy  FAILED: CatBoostError" in progress
    assert "train   usdjpy  skipped: failed at select" in progress
    text = summary_text(result)
    assert "FAILED at select: CatBoostError" in text and "deployed 2 of 3 pairs; FAILED: usdjpy (at select)" in text


def test_recurring_drift_pipeline_on_fresh_bars(run, tmp_path):
    """bqx-drift: the deployed repository's packaged references vs fresh bars, per pair and group; with a
    prediction log and an A/B test running, its A/B step scores each variant's answers against the realised
    targets and gives the verdict (here a candidate whose answers are far closer). One run checks both:
    the step's absence without a log is the compiled branch, checked in test_pipeline_spec."""
    import shutil

    from bqx.ab.live import realized_target
    from bqx.kubeflow.local_run import run_local_drift

    repo = tmp_path / "repo"
    shutil.copytree(Path(run.find("deploy-models")[0].artifacts["repository"]["uri"]), repo)
    manifest = json.loads((repo / "manifest.json").read_text())
    deployed = sorted(manifest["models"])  # what the gate let through
    written = write_sample(tmp_path / "fresh", PAIRS, days=6, start="2024-08-05", seed=7)
    rng = np.random.default_rng(0)
    logs = []
    for pair in deployed:
        bars = pd.read_parquet(next(p for p in written if p.name.startswith(pair)))
        truth = realized_target(bars, load_tarball(repo / manifest["models"][pair]["target_model"])).to_numpy()
        variant = np.where(rng.random(len(bars)) < 0.3, "candidate", "current")
        noise = np.where(variant == "candidate", 0.1, 1.0) * np.nanstd(truth) * rng.standard_normal(len(bars))
        logs.append(pd.DataFrame({"ts_utc": bars["ts_utc"], "pair": pair, "prediction": np.nan_to_num(truth) + noise,
                                  "model": pair, "model_version": "v", "variant": variant}))
    started = min(frame["ts_utc"].iloc[0] for frame in logs).isoformat()
    sides = {pair: manifest["models"][pair] for pair in deployed}
    manifest["ab"] = {"id": "e2e", "started": started, "candidate_percent": 30, "current": sides, "candidate": sides}
    (repo / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "log").mkdir()
    pd.concat(logs, ignore_index=True).to_parquet(tmp_path / "log" / "p.parquet")
    settings = Settings(registry=RegistrySettings(ab_window_h=24, ab_min_hours=12))
    result = run_local_drift(tmp_path / "fresh", repo, tmp_path / "out", settings, deployed,
                             echo=open(tmp_path / "progress.txt", "w"), prediction_log=tmp_path / "log")
    monitors = result.find("monitor-drift")
    assert sorted(t.pair for t in monitors) == deployed and deployed
    for task in monitors:
        summary = json.loads(Path(task.artifacts["summary"]["uri"]).read_text())
        assert {"idx", "bqx", "output"} <= set(summary["domains"])
        assert summary["domains"]["output"]["title"] == "target and prediction"
        assert summary["predictions"] == "logged"
        status = Path(task.artifacts["status"]["uri"]).read_text()
        assert "| rate_idx |" in status and "| BQX |" in status
        html = Path(task.artifacts["report"]["uri"]).read_text()
        assert "<h2>rate_idx features</h2>" in html and "<h2>target and prediction features</h2>" in html
        assert len(html.encode()) < 5e6
        if task.pair == "eurusd":
            check_opens_in_a_browser(html, tmp_path)
            check_logged_predictions(task, result, repo, tmp_path)
    (task,) = result.find("decide-ab")
    assert task.artifacts["verdict"]["metadata"]["action"] == "promote"
    card = Path(task.artifacts["verdict"]["uri"]).read_text()
    assert "# A/B test e2e" in card and "**promote**: the candidate is better" in card


def check_opens_in_a_browser(html: str, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from browser import open_page

    page = tmp_path / "monitor.html"
    page.write_text(html)
    opened = open_page(page)
    assert opened.errors == [] and not opened.blank()


def check_logged_predictions(task, result, repo, tmp_path):
    """Drift of the predictions the server logged (its log format: ts_utc, pair, prediction)."""
    import numpy as np
    import pyarrow.parquet as pq

    from bqx.drift.run import monitor_pair

    features = next(t for t in result.find("extract-features") if t.pair == "eurusd").artifacts["features"]["uri"]
    ts = pq.read_table(Path(features) / "features.parquet", columns=["ts_utc"]).to_pandas()["ts_utc"]
    served = ts.iloc[-3000:]
    log = pd.DataFrame({"ts_utc": served.to_numpy(), "pair": "eurusd", "prediction": np.full(len(served), 5.0)})
    (tmp_path / "predlog").mkdir()
    log.to_parquet(tmp_path / "predlog" / "part-0.parquet")
    summary = monitor_pair(features, repo / "eurusd.tar.gz", "eurusd", Settings(), prediction_log=tmp_path / "predlog")
    assert summary.fresh["predictions"] == "logged"
    assert summary.domains["output"].drifted_features[-1] == "prediction"
    assert summary.fresh["fresh_rows"] <= 3000


def test_batch_prediction_pipeline_on_fresh_bars(run, tmp_path):
    """bqx-predict through kfp.local: ingest, then predict with the deployed repository; the same rows and
    values as the library's `bqx predict` on the same bars."""
    from bqx.artifacts import PREDICTIONS
    from bqx.kubeflow.local_run import run_local_predict
    from bqx.predict import run as predict

    repo = Path(run.find("deploy-models")[0].artifacts["repository"]["uri"])
    write_sample(tmp_path / "fresh", PAIRS, days=4, start="2024-08-05", seed=8)
    result = run_local_predict(tmp_path / "fresh", repo, tmp_path / "out", Settings(), PAIRS, since="2024-08-08",
                               echo=open(tmp_path / "progress.txt", "w"))
    (task,) = result.find("predict-bars")
    got = pd.read_parquet(Path(task.artifacts["predictions"]["uri"]) / PREDICTIONS)
    direct = pd.read_parquet(predict(tmp_path / "fresh", repo, tmp_path / "direct.parquet", since="2024-08-08").path)
    deployed = sorted(json.loads((repo / "manifest.json").read_text())["models"])
    assert sorted(got["pair"].unique()) == deployed and len(got) > 1000
    assert got["ts_utc"].min() >= pd.Timestamp("2024-08-08", tz="UTC")
    pd.testing.assert_frame_equal(got, direct)
    assert "predict eurusd" in (tmp_path / "progress.txt").read_text().replace("  ", " ")
