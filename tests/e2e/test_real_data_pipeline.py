"""The whole pipeline, defaults only, on real bars nobody here wrote: gym-anytrading's EURUSD 1-hour
Dukascopy export of 2017 (6,225 bars), as a new user would run it with `bqx run --local --bars FILE`."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from bqx.config import Settings
from bqx.kubeflow.local_run import run_local
from bqx.model_package import load_tarball

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from browser import open_page  # noqa: E402
from test_real_data import gym_eurusd  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    return run_local(gym_eurusd(), root / "out", Settings(), ["eurusd"], echo=open(root / "progress.txt", "w"))


def test_real_hourly_bars_run_end_to_end_with_defaults(run):
    ingest = run.find("ingest-bars")[0].artifacts["bars"]["metadata"]
    assert ingest["bar_interval_s"] == 3600 and ingest["pairs"] == ["eurusd"]
    progress = (run.log_path.parents[3] / "progress.txt").read_text()
    assert "WARNING: 1 h bars" in progress and "train   eurusd" in progress
    train = run.find("train-model")[0]
    model = load_tarball(Path(train.artifacts["model"]["uri"]) / "model.tar.gz")
    state = model.selection["online_state"]
    # the default baseline is the pair's first bar, and the package records the interval it was trained on
    assert state["bar_interval_s"] == 3600 and pd.Timestamp(state["baseline_ts"]) == pd.Timestamp(
        "2017-01-01 22:00", tz="UTC")
    m = train.artifacts["metrics"]["metadata"]
    assert m["bar_interval_s"] == 3600 and m["wf_folds"] >= 2 and m["wf_rows"] > m["rows"]
    # a year of hourly bars holds too few 60-bar trades for a Sharpe ratio: none is reported
    assert m["wf_model_trades"] < 30 and "wf_model_sharpe" not in m and "model_sharpe" not in m
    card = Path(train.artifacts["model_card"]["uri"]).read_text()
    assert "60-minute bars" in card and "n/a (" in card and "Walk-forward evaluation" in card
    summary = json.loads(Path(run.find("drift-report")[0].artifacts["summary"]["uri"]).read_text())
    assert {"idx", "bqx"} <= set(summary["domains"])
    assert all(summary["domains"][d]["status"] != "critical" for d in ("idx", "bqx"))


def test_every_html_artifact_opens_in_a_browser_small_and_without_errors(run, tmp_path):
    pages = [Path(run.find("train-model")[0].artifacts["evaluation"]["uri"]),
             Path(run.find("drift-report")[0].artifacts["report"]["uri"])]
    limits = [2e6, 5e6]
    for page, limit in zip(pages, limits, strict=True):
        assert page.stat().st_size < limit, f"{page} is {page.stat().st_size / 1e6:.1f} MB"
        copy = tmp_path / f"{page.parent.name}.html"  # KFP stores the artifact without a suffix
        copy.write_bytes(page.read_bytes())
        opened = open_page(copy, tmp_path / f"{page.parent.name}.png")
        assert opened.errors == [] and not opened.blank(), (page, opened.errors[:3])
