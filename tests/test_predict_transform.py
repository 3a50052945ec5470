"""Batch prediction on SageMaker Batch Transform, against moto_server and the real serving container code.

moto records CreateModel and CreateTransformJob and reports the job Completed at once, but runs no
container. The test plays SageMaker's part as Batch Transform does it: it reads the job's input from S3,
splits it by line into requests no larger than the job's MaxPayloadInMB (and smaller, so that several
requests are assembled), posts them to ``bqx serve`` on 127.0.0.1 with the job's content type and Accept,
and writes the answers, assembled by line, where SageMaker puts the output. A failed job's reason comes
through botocore's Stubber, which checks the calls against SageMaker's real service model.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import boto3
import httpx
import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber
from botocore.validate import validate_parameters
from test_predict import PAIRS, repo  # noqa: F401 (the fixture)

from bqx.aws import split_s3
from bqx.config import Settings
from bqx.predict import run
from bqx.predict.transform import Submitted, TransformFailed, csv_rows, model_request, transform_request, wait
from bqx.sample import generate
from bqx.serving.launch import bqx_serve, free_port, started
from bqx.serving.payload import csv_matrix


def _play_batch_transform(sm, s3, job: str, serve_url: str, scratch: Path, request_bytes: int = 64 * 1024,
                          drop_last: bool = False) -> int:
    """SageMaker's part of one transform job; returns how many requests it sent."""
    desc = sm.describe_transform_job(TransformJobName=job)
    assert desc["BatchStrategy"] == "MultiRecord" and desc["TransformInput"]["SplitType"] == "Line"
    assert desc["TransformOutput"]["AssembleWith"] == "Line"
    model = sm.describe_model(ModelName=desc["ModelName"])["PrimaryContainer"]
    bucket, key = split_s3(model["ModelDataUrl"])
    package = scratch / f"{job}.tar.gz"
    s3.download_file(bucket, key, str(package))
    cap = min(desc["MaxPayloadInMB"] * 1024 * 1024, request_bytes)
    headers = {"Content-Type": desc["TransformInput"]["ContentType"], "Accept": desc["TransformOutput"]["Accept"]}
    in_bucket, prefix = split_s3(desc["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
    out_bucket, out_prefix = split_s3(desc["TransformOutput"]["S3OutputPath"])
    requests = 0
    with httpx.Client(base_url=serve_url, timeout=60) as c:
        assert c.post("/models", json={"model_name": job, "url": str(package)}).status_code == 200
        for obj in s3.list_objects_v2(Bucket=in_bucket, Prefix=prefix)["Contents"]:
            lines = s3.get_object(Bucket=in_bucket, Key=obj["Key"])["Body"].read().decode().splitlines(keepends=True)
            answers, batch = [], ""
            for line in [*lines, None]:
                if line is None or (batch and len(batch) + len(line) > cap):
                    r = c.post("/invocations", content=batch.encode(), headers=headers)
                    assert r.status_code == 200, r.text
                    answers.extend(r.text.splitlines())
                    requests, batch = requests + 1, ""
                if line is not None:
                    batch += line
            if drop_last:
                answers = answers[:-1]
            name = obj["Key"].rsplit("/", 1)[-1] + ".out"
            s3.put_object(Bucket=out_bucket, Key=f"{out_prefix.rstrip('/')}/{name}", Body="\n".join(answers).encode())
        c.delete(f"/models/{job}")
    return requests


@pytest.fixture
def later(tmp_path) -> Path:
    (tmp_path / "bars").mkdir()
    for pair, frame in generate(PAIRS, days=3, seed=22, start="2024-07-15").items():
        frame.to_parquet(tmp_path / "bars" / f"{pair}.parquet", index=False)
    return tmp_path / "bars"


def test_batch_transform_predicts_what_the_local_backend_does(repo, later, tmp_path, aws_settings,  # noqa: F811
                                                               moto_server):
    local = pd.read_parquet(run(later, repo, tmp_path / "local.parquet").path)
    sm = boto3.client("sagemaker", endpoint_url=moto_server, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    root = tmp_path / "serve-root"
    root.mkdir()
    played: dict[str, int] = {}
    with started(bqx_serve(free_port_ := free_port(), "--model-root", str(root)),
                 f"http://127.0.0.1:{free_port_}") as server:

        def progress(pair: str, text: str) -> None:  # SageMaker runs each job once it is submitted
            if "sent to transform job" in text:
                job = text.rsplit(" ", 1)[-1]
                played[job] = _play_batch_transform(sm, s3, job, server.url, root)

        summary = run(later, repo, tmp_path / "cloud.parquet", progress=progress, backend="sagemaker",
                      settings=aws_settings)
    cloud = pd.read_parquet(summary.path)
    assert len(played) == 2 and min(played.values()) > 1  # two jobs, each assembled from several requests
    pd.testing.assert_frame_equal(cloud[["ts_utc", "pair", "target_model"]], local[["ts_utc", "pair", "target_model"]])
    np.testing.assert_allclose(cloud["prediction"], local["prediction"], rtol=0, atol=1e-9)

    jobs = sm.list_transform_jobs()["TransformJobSummaries"]
    for job in played:
        desc = sm.describe_transform_job(TransformJobName=job)
        assert desc["TransformResources"]["InstanceType"] == "ml.m5.large" and desc["MaxPayloadInMB"] == 6
        image = sm.describe_model(ModelName=job)["PrimaryContainer"]["Image"]
        assert image == aws_settings.aws.serve_image
    # a rerun of the same inputs finds the finished jobs: nothing created, nothing uploaded, same answer
    bucket = aws_settings.aws.bucket
    before = len(s3.list_objects_v2(Bucket=bucket)["Contents"])
    again = run(later, repo, tmp_path / "again.parquet", backend="sagemaker", settings=aws_settings)
    assert len(sm.list_transform_jobs()["TransformJobSummaries"]) == len(jobs)
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == before
    pd.testing.assert_frame_equal(pd.read_parquet(again.path), cloud)


def test_an_output_that_does_not_fit_its_input_is_named(repo, later, tmp_path, aws_settings, moto_server):  # noqa: F811
    sm = boto3.client("sagemaker", endpoint_url=moto_server, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    root = tmp_path / "serve-root"
    root.mkdir()
    with started(bqx_serve(port := free_port(), "--model-root", str(root)), f"http://127.0.0.1:{port}") as server:
        def progress(pair: str, text: str) -> None:
            if "sent to transform job" in text:
                _play_batch_transform(sm, s3, text.rsplit(" ", 1)[-1], server.url, root, drop_last=True)

        with pytest.raises(TransformFailed, match=r"eurjpy: transform job bqx-eurjpy-\w+ gave [\d,]+ predictions for "
                                                  r"[\d,]+ rows"):
            run(later, repo, tmp_path / "cloud.parquet", ["eurjpy"], progress=progress, backend="sagemaker",
                settings=aws_settings)
    assert not (tmp_path / "cloud.parquet").exists()  # nothing half-written


def test_a_failed_job_gives_sagemakers_reason():
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    job = Submitted("eurusd", "bqx-eurusd-0123456789ab", "s3://b/k/eurusd.csv.out", 10)

    def described(status: str, **extra: object) -> dict:
        return {"TransformJobName": job.job,
                "TransformJobArn": f"arn:aws:sagemaker:us-east-1:1:transform-job/{job.job}",
                "TransformJobStatus": status, "ModelName": job.job, "CreationTime": "2026-12-03T00:00:00Z",
                "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/i/"}}},
                "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}, **extra}

    sleeps: list[float] = []
    with Stubber(sm) as stub:
        stub.add_response("describe_transform_job", described("InProgress"), {"TransformJobName": job.job})
        stub.add_response("describe_transform_job", described(
            "Failed", FailureReason="ClientError: See job logs for more information"), {"TransformJobName": job.job})
        with pytest.raises(TransformFailed, match="eurusd: transform job bqx-eurusd-0123456789ab failed: ClientError"):
            wait(sm, job, poll_s=5, timeout_s=1e6, sleep=sleeps.append)
    assert sleeps == [5]


def test_requests_match_sagemakers_service_model():
    from bqx.config import AwsSettings

    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    settings = Settings(aws=AwsSettings(bucket="b", role_arn="arn:aws:iam::123456789012:role/r", serve_image="img:1",
                                        kms_key_id="alias/bqx", vpc_subnets=("subnet-1",),
                                        vpc_security_groups=("sg-1",), tags={"team": "fx"}))
    for op, request in (("CreateModel", model_request("bqx-eurusd-x", "s3://b/m.tar.gz", settings, "eurusd")),
                        ("CreateTransformJob", transform_request("bqx-eurusd-x", "s3://b/in/", "s3://b/out/", settings,
                                                                 "eurusd"))):
        validate_parameters(request, sm.meta.service_model.operation_model(op).input_shape)
    assert dataclasses.replace(settings.aws, transform_max_payload_mb=100).transform_max_payload_mb == 100


def test_rows_go_as_csv_the_server_reads_back_exactly():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((50, 7)) * 10.0 ** rng.integers(-6, 6, (50, 7))).astype(np.float32)
    x[4, 1] = x[9, 6] = np.nan
    back = csv_matrix(csv_rows(x), [f"f{i}" for i in range(7)]).astype(np.float32)
    np.testing.assert_array_equal(back, x)  # NaN in the same places, every value bit-equal
    assert math.isnan(back[4, 1])
