"""The drift pipeline reads production: the model repository deploy wrote to S3 (through its
manifest.json), and what was served, from the endpoint's Data Capture or the server's own prediction
log on S3. Against moto_server on 127.0.0.1; the captured lines are built from real server responses."""

import base64
import json

import boto3
import numpy as np
import pandas as pd
import pytest

from bqx.config import AwsSettings, Settings
from bqx.deploy import ModelRef, deploy_sagemaker
from bqx.drift.run import monitor_pair
from bqx.extract import run as extract
from bqx.ingest import ingest
from bqx.lag import materialise
from bqx.locations import model_tarball, read_served
from bqx.panel import run as panel
from bqx.sample import write_sample
from bqx.serving.config import ServeConfig
from bqx.serving.models import ModelStore
from bqx.serving.prediction_log import PredictionLog
from bqx.serving.server import App
from bqx.serving.synthetic import synthetic_model

FEATURES = ["technical_idx.rsi_14", "technical_bqx.rsi_14_lag60", "moving_avg_idx.ema60_dist",
            "statistics_bqx.w60_skew", "bqx.w15_bqx_return_lag61"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A week of fresh eurusd bars through ingest, panel and extract, as the drift pipeline makes them."""
    root = tmp_path_factory.mktemp("fresh")
    settings = Settings()
    write_sample(root / "raw", ["eurusd"], days=6, start="2024-08-05", seed=9)
    ingest(root / "raw", root / "bars", ["eurusd"], settings)
    panel(root / "bars", ["eurusd"], settings, root / "panel")
    extract(root / "bars", "eurusd", settings, root / "features", root / "panel")
    return root


def _capture_line(request: dict, response: dict, base64_output: bool) -> str:
    """One line as SageMaker's Data Capture writes it for a JSON request and its response."""
    out = json.dumps(response)
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": json.dumps(request),
                          "encoding": "JSON"},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                           "data": base64.b64encode(out.encode()).decode() if base64_output else out,
                           "encoding": "BASE64" if base64_output else "JSON"}},
        "eventMetadata": {"eventId": "e", "inferenceTime": "2026-12-02T10:00:00Z"}, "eventVersion": "0"})


def test_drift_reads_the_s3_repository_and_the_endpoints_data_capture(fresh, tmp_path, aws_settings, moto_server):
    bucket = aws_settings.aws.bucket
    capture_uri = f"s3://{bucket}/capture"
    settings = aws_settings.replace(aws=AwsSettings(**{**aws_settings.aws.__dict__, "data_capture_s3_uri": capture_uri,
                                                       "data_capture_percent": 50}))
    tarball = synthetic_model(tmp_path / "eurusd.tar.gz", "eurusd", FEATURES, rows=2000, iterations=20)
    deployed = deploy_sagemaker([ModelRef("eurusd", tarball, {"catalog_version": "synthetic"})], settings,
                                sleep=lambda s: None)
    sm = boto3.client("sagemaker", endpoint_url=moto_server, region_name="us-east-1")
    config = sm.describe_endpoint_config(EndpointConfigName=deployed.endpoint_config)["DataCaptureConfig"]
    assert config["DestinationS3Uri"] == capture_uri and config["InitialSamplingPercentage"] == 50

    # the package, found through the repository's manifest.json on S3, is the one deployed
    repo = f"s3://{bucket}/bqx-ml/models"
    got = model_tarball(repo, "eurusd", tmp_path)
    assert got.name == deployed.manifest["models"]["eurusd"]["target_model"]
    assert got.read_bytes() == tarball.read_bytes()
    with pytest.raises(FileNotFoundError, match="has no model for gbpusd .*lists eurusd"):
        model_tarball(repo, "gbpusd", tmp_path)

    # what the endpoint served, as Data Capture stores it: real server answers for the fresh rows
    fpath = fresh / "features" / "features.parquet"
    ts = pd.read_parquet(fpath, columns=["ts_utc"])["ts_utc"]
    rows = np.arange(Settings().splits.max_lag, len(ts))
    matrix = materialise(fpath, FEATURES, rows)
    app = App(ServeConfig(), ModelStore())
    app.store.load("eurusd", str(tarball))
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    served = {}
    for part, chunk in enumerate(np.array_split(np.arange(len(rows)), 6)):
        lines = []
        for block in np.array_split(chunk, 5):
            request = {"rows": matrix.iloc[block].to_dict(orient="records"),
                       "ts_utc": [ts.iloc[rows[i]].isoformat() for i in block]}
            response = app.invoke("eurusd", json.dumps(request).encode(), "application/json")
            served.update({p["ts_utc"]: p["prediction"] for p in response["predictions"]})
            lines.append(_capture_line(request, response, base64_output=part % 2 == 1))
        lines.append(_capture_line({"bars": []}, {"status": "warming up"}, False))  # no predictions: skipped
        key = f"capture/{settings.aws.endpoint_name}/AllTraffic/2026/12/02/{10 + part:02d}/part-{part}.jsonl"
        s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
    logged = read_served(capture_uri, "eurusd")
    assert len(logged) == len(rows) and np.allclose(logged.to_numpy(), [served[k] for k in sorted(served)])

    summary = monitor_pair(fresh / "features", got, "eurusd", Settings(), prediction_log=capture_uri)
    assert summary.fresh["predictions"] == "logged" and summary.fresh["fresh_rows"] == len(rows)


def test_the_servers_prediction_log_goes_to_s3_and_drift_reads_it_there(aws_settings, moto_server):
    location = f"s3://{aws_settings.aws.bucket}/predictions"
    log = PredictionLog(location, flush_rows=3)
    times = list(pd.date_range("2024-08-05", periods=5, freq="1min", tz="UTC"))
    log.append(times[:3], "eurusd", [0.1, 0.2, 0.3], "eurusd", "abc")  # three rows: flushed as one object
    log.append(times[3:], "eurusd", [0.4, 0.5], "eurusd", "abc")
    log.flush()
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    assert len(s3.list_objects_v2(Bucket=aws_settings.aws.bucket, Prefix="predictions/")["Contents"]) == 2
    served = read_served(location, "eurusd")
    assert list(served.index) == times and served.tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_what_cannot_be_read_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prediction log .* and no Data Capture"):
        read_served(tmp_path, "eurusd")
    (tmp_path / "x.jsonl").write_text('{"captureData": {}}\n')
    with pytest.raises(ValueError, match=r"x.jsonl, line 1: not a captured bqx response"):
        read_served(tmp_path, "eurusd")
