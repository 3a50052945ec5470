"""The sagemaker training backend against a real moto_server on 127.0.0.1.

moto accepts CreateTrainingJob and reports the job Completed at once, but runs no container and
writes no artifact. The test therefore plays SageMaker's part honestly: it runs the real training
entrypoint (the image's `bqx train`) on the same channels and puts its model.tar.gz where SageMaker
writes it. moto cannot make a job fail either, so the failure path uses botocore's Stubber with the
exact DescribeTrainingJob response shape SageMaker returns.
"""

import boto3
import pytest
from botocore.stub import Stubber
from test_training import HP, _channels

from bqx.training.local import TrainingFailed, train_local
from bqx.training.sagemaker import job_name, train_sagemaker, wait


def test_training_job_request_artifact_and_idempotent_rerun(tmp_path, aws_settings, moto_server):
    import json

    channels = _channels(tmp_path / "ch")
    selection = json.loads((channels["train"] / "selection.json").read_text())
    name = job_name("eurusd", selection, HP)
    # SageMaker's part: run the training container's entrypoint and store the artifact under the output path
    train_local(channels, HP, tmp_path / "sm" / "model.tar.gz")
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.upload_file(str(tmp_path / "sm" / "model.tar.gz"), aws_settings.aws.bucket,
                   f"bqx-ml/jobs/{name}/output/model.tar.gz")

    meta = train_sagemaker(channels, HP, tmp_path / "out" / "model.tar.gz", aws_settings, "eurusd")
    assert meta["training_job"] == name and meta["catalog_version"] == "c0ffee"
    assert (tmp_path / "out" / "model.tar.gz").exists()

    sm = boto3.client("sagemaker", endpoint_url=moto_server, region_name="us-east-1")
    desc = sm.describe_training_job(TrainingJobName=name)
    assert desc["HyperParameters"] == HP and all(isinstance(v, str) for v in desc["HyperParameters"].values())
    assert desc["AlgorithmSpecification"]["TrainingImage"] == aws_settings.aws.train_image
    assert desc["RoleArn"] == aws_settings.aws.role_arn
    assert desc["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert desc["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    channels_seen = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in desc["InputDataConfig"]}
    assert set(channels_seen) == {"train", "validation"}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws_settings.aws.bucket)["Contents"]]
    assert f"bqx-ml/jobs/{name}/input/train/selection.json" in keys
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=desc["TrainingJobArn"])["Tags"]}
    assert tags["bqx:pair"] == "eurusd"

    before = len(keys)
    train_sagemaker(channels, HP, tmp_path / "again" / "model.tar.gz", aws_settings, "eurusd")
    jobs = sm.list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs].count(name) == 1  # found, not created again
    assert len(s3.list_objects_v2(Bucket=aws_settings.aws.bucket)["Contents"]) == before  # nothing re-uploaded


def test_missing_aws_settings_are_named(tmp_path):
    from bqx.config import Settings

    with pytest.raises(ValueError, match="aws.bucket, aws.role_arn, aws.train_image"):
        train_sagemaker(_channels(tmp_path / "ch"), HP, tmp_path / "m.tar.gz", Settings(), "eurusd")


def _describe(status: str, **extra):
    return {"TrainingJobName": "j", "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/j",
            "TrainingJobStatus": status, "SecondaryStatus": "Training", "AlgorithmSpecification":
            {"TrainingInputMode": "File"}, "ModelArtifacts": {"S3ModelArtifacts": "s3://b/k"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "CreationTime": "2026-11-24T00:00:00Z", **extra}


def test_failed_job_surfaces_its_failure_reason_after_backoff():
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sleeps = []
    with Stubber(sm) as stub:
        for status in ("InProgress", "InProgress", "InProgress"):
            stub.add_response("describe_training_job", _describe(status), {"TrainingJobName": "j"})
        reason = "AlgorithmError: ValueError: unknown hyperparameter 'depht'"
        stub.add_response("describe_training_job", _describe("Failed", FailureReason=reason), {"TrainingJobName": "j"})
        with pytest.raises(TrainingFailed, match="failed: AlgorithmError: ValueError: unknown hyperparameter"):
            wait(sm, "j", poll_s=10, timeout_s=1e6, sleep=sleeps.append)
    assert sleeps == [10, 15, 22.5]  # the interval grows by half each poll


def test_ingest_reads_s3_through_pyarrow_with_the_endpoint_override(tmp_path, aws_settings, moto_server):
    import numpy as np
    import pandas as pd

    from bqx.bars import BarValidationError
    from bqx.ingest import ingest
    from bqx.sample import write_sample

    write_sample(tmp_path / "bars", ["eurusd", "usdjpy"], days=1, seed=5)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    bucket = aws_settings.aws.bucket
    for f in (tmp_path / "bars").iterdir():
        s3.upload_file(str(f), bucket, f"bars/{f.name}")
    summary = ingest(f"s3://{bucket}/bars", tmp_path / "out")
    assert sorted(summary) == ["eurusd", "usdjpy"] and summary["eurusd"]["rows"] == 1440
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "usdjpy.parquet"),
                                  pd.read_parquet(tmp_path / "bars" / "usdjpy.parquet"), check_dtype=False)
    bad = pd.read_parquet(tmp_path / "bars" / "usdjpy.parquet")
    bad.loc[9, "close"] = np.nan
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    s3.upload_file(str(tmp_path / "bad.parquet"), bucket, "bars/usdjpy.parquet")
    with pytest.raises(BarValidationError, match=rf"file s3://{bucket}/bars/usdjpy.parquet, pair usdjpy, data row 9"):
        ingest(f"s3://{bucket}/bars", tmp_path / "out2")
