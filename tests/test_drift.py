import json

import numpy as np
import pandas as pd
import pytest

from bqx.config import Settings
from bqx.drift.report import run_drift

IDX = ["reg_idx.w60_r2", "reg_idx.w90_rmse", "technical_idx.rsi_14", "technical_idx.cci_20"]
BQX = ["bqx.w15_bqx_return", "bqx.w30_bqx_max", "technical_bqx.rsi_14", "reg_bqx.w60_r2"]


def _frames(shift_domain: str, kind: str = "mean", n: int = 4000):
    """Autocorrelated features (AR(1), phi 0.99, as rolling features are): the reference's own windows
    wander, so a fixed threshold would fire on unchanged data; the current gets a shift in one domain."""
    rng = np.random.default_rng(4)
    x = np.zeros((2 * n, 8))
    for t in range(1, 2 * n):
        x[t] = 0.99 * x[t - 1] + rng.standard_normal(8)
    ref = pd.DataFrame(x[:n], columns=IDX + BQX)
    cur = pd.DataFrame(x[n + 500:], columns=IDX + BQX)
    cols = IDX if shift_domain == "idx" else BQX if shift_domain == "bqx" else []
    if kind == "mean":
        cur[cols] += 2 * ref[cols].std()
    elif cols:
        cur[cols] = (cur[cols] - cur[cols].mean()) * 3 + cur[cols].mean()
    return ref, cur


@pytest.mark.parametrize(("shifted", "still", "kind"), [("bqx", "idx", "mean"), ("idx", "bqx", "mean"),
                                                        ("idx", "bqx", "vol")])
def test_drift_in_one_domain_is_flagged_there_only(shifted, still, kind, tmp_path):
    ref, cur = _frames(shifted, kind)
    out = run_drift(ref, cur, IDX + BQX, Settings(), tmp_path / "r.html")
    d = out.domains
    assert d[shifted].status == "critical" and d[shifted].index >= Settings().drift.critical_index
    assert d[still].status == "ok" and d[still].index < 1.0
    assert {d["idx"].title, d["bqx"].title} == {"rate_idx", "BQX"}
    html = (tmp_path / "r.html").read_text()
    assert "<h2>rate_idx features</h2>" in html and "<h2>BQX features</h2>" in html and "Evidently" in html
    assert "bqx.w15_bqx_return" in html and "reg_idx.w60_r2" in html


def test_unchanged_autocorrelated_data_does_not_alarm_where_a_fixed_threshold_does():
    ref, cur = _frames("none")
    out = run_drift(ref, cur, IDX + BQX, Settings())
    assert {d.status for d in out.domains.values()} == {"ok"}
    # Evidently's default (normed Wasserstein >= 0.1) calls most of these unchanged features drifted
    fixed = [f for f, v in out.features.items() if v.location >= 0.1]
    assert len(fixed) >= 4
    f = out.features["reg_idx.w60_r2"]
    assert f.location_threshold > 0.1 and f.score == pytest.approx(
        max(f.location / f.location_threshold, f.scale / f.scale_threshold))
    assert out.calibration["windows"] >= 4
    as_json = out.with_run("eurusd", None).to_json()  # the summary artifact: plain JSON, the same figures
    assert json.loads(json.dumps(as_json))["domains"]["idx"]["status"] == "ok" and as_json["pair"] == "eurusd"


def test_configured_evidently_method_is_used_in_the_html(tmp_path):
    ref, cur = _frames("bqx")
    run_drift(ref, cur, IDX + BQX, Settings().replace(method="psi"), tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    evidently = text[text.index("<iframe"):]
    assert "PSI" in evidently and "Wasserstein" not in evidently


def test_target_and_prediction_drift_is_its_own_group():
    ref, cur = _frames("idx")
    rng = np.random.default_rng(9)
    ref["target"], cur["target"] = rng.standard_normal(len(ref)), rng.standard_normal(len(cur))
    ref["prediction"], cur["prediction"] = rng.standard_normal(len(ref)), rng.standard_normal(len(cur)) + 2
    out = run_drift(ref, cur, IDX + BQX, Settings(), outputs=["target", "prediction"])
    group = out.domains["output"]
    assert group.title == "target and prediction" and group.drifted_features == ["prediction"]


def test_critical_drift_publishes_to_sns(moto_server):
    import boto3

    from bqx.drift.report import alert

    sns = boto3.client("sns", endpoint_url=moto_server, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    topic = sns.create_topic(Name="bqx-drift")["TopicArn"]
    queue = sqs.create_queue(QueueName="bqx-drift-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    ref, cur = _frames("bqx")
    summary = run_drift(ref, cur, IDX + BQX, Settings())
    assert alert(summary, "eurusd", Settings()) is None  # no topic configured: no alert
    assert alert(summary, "eurusd", Settings().replace(sns_topic_arn=topic))
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert len(messages) == 1
    assert "Critical feature drift for eurusd" in messages[0]["Body"] and "BQX: drift index" in messages[0]["Body"]
    calm = run_drift(ref, ref, IDX + BQX, Settings())
    assert alert(calm, "eurusd", Settings().replace(sns_topic_arn=topic)) is None


def test_drift_distances_by_hand_and_too_short_a_reference():
    from bqx.drift.scores import calibrate, distances, quantiles

    rng = np.random.default_rng(1)
    x = rng.standard_normal((20_000, 2))
    shifted = x + np.array([0.5, 0.0])
    scaled = x * np.array([1.0, 2.0])
    sd = x.std(axis=0)
    loc = distances(quantiles(x), quantiles(shifted), sd)[0]
    assert loc[0] == pytest.approx(0.5 / sd[0], rel=0.02) and loc[1] == 0
    scale = distances(quantiles(x), quantiles(scaled), sd)[1]
    assert scale[1] == pytest.approx(np.log(2), rel=1e-9) and scale[0] == 0
    flat = distances(quantiles(np.ones((50, 1))), quantiles(np.ones((50, 1))), np.zeros(1))
    assert np.isnan(flat).all()  # no spread: not scored
    with pytest.raises(ValueError, match="too few to calibrate"):
        calibrate(x[:20], 30, 10)


def test_quantiles_equal_numpys_nanquantile_with_missing_and_constant_columns():
    import warnings

    from bqx.drift.scores import QUANTILES, quantiles

    rng = np.random.default_rng(1)
    x = rng.standard_normal((3001, 40)) * rng.uniform(0.01, 100, 40)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 3] = np.nan  # a feature still in warm-up
    x[:, 4] = np.nan
    x[-1, 4] = 2.5  # one value
    x[:, 5] = 7.0  # constant
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanquantile(x, QUANTILES, axis=0)
    got = quantiles(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.isnan(got[:, 3]).all() and (got[:, 4] == x[-1, 4]).all() and (got[:, 5] == 7.0).all()


def test_a_fresh_process_imports_evidently_while_the_statistics_are_computed(tmp_path):
    """Evidently's import (seconds) starts in a thread as run_drift begins and the page still comes out
    whole: the page's own import waits for it (a fresh Python, where nothing has imported Evidently)."""
    import subprocess
    import sys
    from pathlib import Path

    probe = f"""
import sys, threading
from tests.test_drift import IDX, BQX, _frames
from bqx.config import Settings
from bqx.drift.report import run_drift
started = []
real = threading.Thread.start
def start(self):
    started.append(self.name)
    real(self)
threading.Thread.start = start
assert "evidently" not in sys.modules
ref, cur = _frames("bqx")
run_drift(ref, cur, IDX + BQX, Settings(), {str(tmp_path / "r.html")!r})
print(started)
"""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True,
                          cwd=root)
    assert "bqx-import-evidently" in done.stdout
    page = (tmp_path / "r.html").read_text()
    assert "Evidently: the most drifted features of each group" in page and "<iframe srcdoc=" in page
