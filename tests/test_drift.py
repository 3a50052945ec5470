import numpy as np
import pandas as pd
import pytest

from bqx.config import Settings
from bqx.drift import run_drift

IDX = ["reg_idx.w60_r2", "reg_idx.w90_rmse", "technical_idx.rsi_14", "technical_idx.cci_20"]
BQX = ["bqx.w15_bqx_return", "bqx.w30_bqx_max", "technical_bqx.rsi_14", "reg_bqx.w60_r2"]


def _frames(shift_domain: str):
    rng = np.random.default_rng(4)
    ref = pd.DataFrame(rng.standard_normal((2000, 8)), columns=IDX + BQX)
    cur = pd.DataFrame(rng.standard_normal((2000, 8)), columns=IDX + BQX)
    cur[IDX if shift_domain == "idx" else BQX] += 1.5
    return ref, cur


@pytest.mark.parametrize(("shifted", "still"), [("bqx", "idx"), ("idx", "bqx")])
def test_drift_in_one_domain_is_flagged_there_only(shifted, still, tmp_path):
    ref, cur = _frames(shifted)
    out = run_drift(ref, cur, IDX + BQX, Settings(), tmp_path / "r.html")
    d = out["domains"]
    assert d[shifted]["share"] == 1.0 and d[shifted]["status"] == "critical"
    assert d[still]["share"] == 0.0 and d[still]["status"] == "ok"
    assert {d["idx"]["title"], d["bqx"]["title"]} == {"rate_idx", "BQX"}
    html = (tmp_path / "r.html").read_text()
    assert "<h2>rate_idx features</h2>" in html and "<h2>BQX features</h2>" in html
    assert "bqx.w15_bqx_return" in html and "reg_idx.w60_r2" in html


def test_configured_methods_kl_psi_and_per_feature_overrides():
    ref, cur = _frames("bqx")
    s = Settings(drift_method="kl_div", drift_feature_methods={"reg_idx.w60_r2": "psi"},
                 drift_feature_thresholds={"reg_idx.w60_r2": 0.2})
    out = run_drift(ref, cur, IDX + BQX, s)
    f = out["features"]
    assert f["bqx.w15_bqx_return"]["method"] == "kl_div" and f["bqx.w15_bqx_return"]["drift"]
    assert f["reg_idx.w60_r2"]["method"] == "psi" and f["reg_idx.w60_r2"]["threshold"] == 0.2
    assert not f["reg_idx.w60_r2"]["drift"]
    ks = run_drift(ref, cur, IDX + BQX, Settings(drift_method="ks"))["features"]
    assert ks["bqx.w30_bqx_max"]["drift"] and ks["bqx.w30_bqx_max"]["score"] < 0.05  # p-value: low = drift
    assert not ks["technical_idx.rsi_14"]["drift"]


def test_target_and_prediction_drift_is_its_own_group():
    ref, cur = _frames("idx")
    rng = np.random.default_rng(9)
    ref["target"], cur["target"] = rng.standard_normal(2000), rng.standard_normal(2000)
    ref["prediction"], cur["prediction"] = rng.standard_normal(2000), rng.standard_normal(2000) + 2
    out = run_drift(ref, cur, IDX + BQX, Settings(), outputs=["target", "prediction"])
    group = out["domains"]["output"]
    assert group["title"] == "target and prediction" and group["drifted_features"] == ["prediction"]


def test_critical_drift_publishes_to_sns(moto_server):
    import boto3

    from bqx.drift import alert

    sns = boto3.client("sns", endpoint_url=moto_server, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    topic = sns.create_topic(Name="bqx-drift")["TopicArn"]
    queue = sqs.create_queue(QueueName="bqx-drift-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    ref, cur = _frames("bqx")
    summary = run_drift(ref, cur, IDX + BQX, Settings())
    assert alert(summary, "eurusd", Settings()) is None  # no topic configured: no alert
    assert alert(summary, "eurusd", Settings(drift_sns_topic_arn=topic))
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert len(messages) == 1
    assert "Critical feature drift for eurusd" in messages[0]["Body"] and "BQX: 4 of 4" in messages[0]["Body"]
    calm = run_drift(ref, ref, IDX + BQX, Settings())
    assert alert(calm, "eurusd", Settings(drift_sns_topic_arn=topic)) is None
