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

from bqx.train.local import TrainingFailed, train_local
from bqx.train.sagemaker import job_name, train_sagemaker, wait


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
    assert sorted(summary.pairs) == ["eurusd", "usdjpy"] and summary.pairs["eurusd"].rows == 1440
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "usdjpy.parquet"),
                                  pd.read_parquet(tmp_path / "bars" / "usdjpy.parquet"), check_dtype=False)
    bad = pd.read_parquet(tmp_path / "bars" / "usdjpy.parquet")
    bad.loc[9, "close"] = np.nan
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    s3.upload_file(str(tmp_path / "bad.parquet"), bucket, "bars/usdjpy.parquet")
    with pytest.raises(BarValidationError, match=rf"file s3://{bucket}/bars/usdjpy.parquet, pair usdjpy, data row 9"):
        ingest(f"s3://{bucket}/bars", tmp_path / "out2")


def _stubbed(monkeypatch, moto_server):
    """train_sagemaker's clients: SageMaker behind botocore's Stubber (moto cannot fail a job or throttle;
    the Stubber checks every request against the real service model), S3 on moto."""
    import bqx.train.sagemaker as backend

    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    monkeypatch.setattr(backend, "client", lambda service, settings: sm if service == "sagemaker" else s3)
    return sm, s3


def _not_found(stub, name):
    stub.add_client_error("describe_training_job", service_error_code="ValidationException",
                          service_message="Requested resource not found.", expected_params={"TrainingJobName": name})


def test_a_job_that_failed_in_an_earlier_run_is_retried_under_the_next_attempt_name(
        tmp_path, aws_settings, moto_server, monkeypatch):
    import json

    channels = _channels(tmp_path / "ch")
    base = job_name("eurusd", json.loads((channels["train"] / "selection.json").read_text()), HP)
    sm, s3 = _stubbed(monkeypatch, moto_server)
    train_local(channels, HP, tmp_path / "sm" / "model.tar.gz")  # SageMaker's part: the artifact of attempt 2
    s3.upload_file(str(tmp_path / "sm" / "model.tar.gz"), aws_settings.aws.bucket, "bqx-ml/jobs/a2.tar.gz")
    done = _describe("Completed", TrainingJobName=f"{base}-a2", TrainingTimeInSeconds=42,
                     ModelArtifacts={"S3ModelArtifacts": f"s3://{aws_settings.aws.bucket}/bqx-ml/jobs/a2.tar.gz"})
    with Stubber(sm) as stub:
        stub.add_response("describe_training_job", _describe("Failed", TrainingJobName=base,
                                                             FailureReason="CapacityError: no ml.m5.large"),
                          {"TrainingJobName": base})
        _not_found(stub, f"{base}-a2")
        for _ in range(2):
            stub.add_client_error("create_training_job", service_error_code="ThrottlingException",
                                  service_message="Rate exceeded")
        arn = f"arn:aws:sagemaker:us-east-1:1:training-job/{base}-a2"
        stub.add_response("create_training_job", {"TrainingJobArn": arn})
        stub.add_response("describe_training_job", done, {"TrainingJobName": f"{base}-a2"})
        sleeps: list[float] = []
        meta = train_sagemaker(channels, HP, tmp_path / "out" / "model.tar.gz", aws_settings, "eurusd",
                               sleep=sleeps.append)
        stub.assert_no_pending_responses()
    assert meta["training_job"] == f"{base}-a2" and meta["train_seconds"] == 42.0
    assert sleeps == [2.0, 4.0]  # the throttled create, retried with a doubling wait


def test_refusals_fail_the_pair_with_awss_code_and_message(tmp_path, aws_settings, moto_server, monkeypatch):
    import json

    channels = _channels(tmp_path / "ch")
    base = job_name("eurusd", json.loads((channels["train"] / "selection.json").read_text()), HP)
    sm, _ = _stubbed(monkeypatch, moto_server)
    with Stubber(sm) as stub:
        _not_found(stub, base)
        stub.add_client_error("create_training_job", service_error_code="ResourceLimitExceeded",
                              service_message="The account-level service limit 'ml.m5.large for training job "
                                              "usage' is 2 Instances")
        with pytest.raises(TrainingFailed, match="CreateTrainingJob: ResourceLimitExceeded: The account-level"):
            train_sagemaker(channels, HP, tmp_path / "m.tar.gz", aws_settings, "eurusd", sleep=lambda s: None)
    failed = [_describe("Failed", TrainingJobName=n, FailureReason=f"AlgorithmError {i}")
              for i, n in enumerate((base, f"{base}-a2", f"{base}-a3"))]
    with Stubber(sm) as stub:
        for d in failed:
            stub.add_response("describe_training_job", d, {"TrainingJobName": d["TrainingJobName"]})
        with pytest.raises(TrainingFailed, match=f"failed 3 times .*{base}-a3, failed: AlgorithmError 2"):
            train_sagemaker(channels, HP, tmp_path / "m.tar.gz", aws_settings, "eurusd", sleep=lambda s: None)


def test_the_request_carries_spot_checkpoints_vpc_kms_metrics_and_tags():
    """Validated against SageMaker's own service model by the Stubber."""
    from bqx.config import AwsSettings, Settings
    from bqx.train.sagemaker import METRICS, training_request

    aws = AwsSettings(bucket="b", role_arn="arn:aws:iam::123456789012:role/r", train_image="i:1", spot=True,
                      max_wait_s=7200, vpc_subnets=("subnet-1",), vpc_security_groups=("sg-1",),
                      kms_key_id="arn:aws:kms:us-east-1:123456789012:key/k", tags={"team": "fx"})
    req = training_request("bqx-eurusd-abc", {"train": "s3://b/t/", "validation": "s3://b/v/"}, HP,
                           Settings(aws=aws), "eurusd")
    assert req["EnableManagedSpotTraining"] and req["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600,
                                                                             "MaxWaitTimeInSeconds": 7200}
    assert req["CheckpointConfig"] == {"S3Uri": "s3://b/bqx-ml/checkpoints/bqx-eurusd-abc/",
                                       "LocalPath": "/opt/ml/checkpoints"}
    assert req["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    assert req["OutputDataConfig"]["KmsKeyId"] == req["ResourceConfig"]["VolumeKmsKeyId"] == aws.kms_key_id
    assert {t["Key"]: t["Value"] for t in req["Tags"]}["team"] == "fx"
    assert req["AlgorithmSpecification"]["MetricDefinitions"] == METRICS
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sm) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/j"},
                          req)
        sm.create_training_job(**req)


def test_the_entrypoint_prints_what_the_metric_definitions_read_and_resumes_from_checkpoints(tmp_path):
    import json
    import os
    import re
    import subprocess
    import sys

    from bqx.train.sagemaker import METRICS

    root = tmp_path / "optml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(HP))
    for ch, src in _channels(tmp_path / "ch").items():
        (root / "input" / "data").mkdir(exist_ok=True)
        os.symlink(src, root / "input" / "data" / ch)
    (root / "checkpoints").mkdir()  # SageMaker creates it for a job with a CheckpointConfig
    env = {**os.environ, "BQX_OPT_ML": str(root)}
    runs = [subprocess.run([sys.executable, "-m", "bqx.cli", "train"], env=env, capture_output=True, text=True)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    values = {m["Name"]: float(re.search(m["Regex"], runs[0].stdout).group(1)) for m in METRICS}
    assert 0 < values["validation:rmse"] < 1 and values["best_iteration"] >= 1
    assert (root / "checkpoints" / "catboost.snapshot").is_file()  # the snapshot a restarted spot job resumes from
