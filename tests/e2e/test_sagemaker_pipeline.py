"""The whole pipeline through kfp.local with the sagemaker backends, against moto_server on 127.0.0.1.

moto records every training job as Completed at once but runs nothing, so this test plays SageMaker's
part with the real thing: for each job the pipeline created, it downloads the job's input channels
from S3, runs the training image's entrypoint (`bqx train`) on them in an /opt/ml layout, and uploads
the model.tar.gz to the job's output path, except for one pair, whose job thus ends without a model.
The second run (same inputs, so the same deterministic job names) must fetch the two models, report
the third pair as failed without losing the others, and serve the two from one multi-model endpoint.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from bqx.kubeflow.local_run import run_local
from bqx.sample import write_sample

PAIRS = ["eurusd", "usdjpy", "gbpusd"]
pytestmark = pytest.mark.e2e


def play_sagemaker(sm, s3, job: str, work: Path) -> None:
    """Run the training entrypoint on a job's S3 channels and store its model where SageMaker would."""
    desc = sm.describe_training_job(TrainingJobName=job)
    root = work / job
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(desc["HyperParameters"]))
    for ch in desc["InputDataConfig"]:
        bucket, _, prefix = ch["DataSource"]["S3DataSource"]["S3Uri"][5:].partition("/")
        target = root / "input" / "data" / ch["ChannelName"]
        target.mkdir(parents=True)
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
            s3.download_file(bucket, obj["Key"], str(target / Path(obj["Key"]).name))
    env = {**os.environ, "BQX_OPT_ML": str(root)}
    subprocess.run([sys.executable, "-m", "bqx.cli", "train"], env=env, check=True, capture_output=True)
    subprocess.run(["tar", "-czf", str(root / "model.tar.gz"), "-C", str(root / "model"), "."], check=True)
    bucket, _, key = desc["ModelArtifacts"]["S3ModelArtifacts"][5:].partition("/")
    s3.upload_file(str(root / "model.tar.gz"), bucket, key)


def test_sagemaker_backends_isolate_a_failed_pair(tmp_path, aws_settings, moto_server):
    aws_settings = aws_settings.replace(gate=False)  # the backends' plumbing; the gate has its own tests
    write_sample(tmp_path / "bars", PAIRS, days=10, seed=42)
    kw = {"endpoint_url": moto_server, "region_name": "us-east-1"}
    sm, s3 = boto3.client("sagemaker", **kw), boto3.client("s3", **kw)
    echo = open(tmp_path / "progress.txt", "w")
    first = run_local(tmp_path / "bars", tmp_path / "out1", aws_settings, PAIRS, echo=echo,
                      train_backend="sagemaker", deploy_backend="sagemaker")
    failed = first.find("deploy-models")[0].artifacts["repository"]["metadata"]["failed"]
    assert sorted(failed) == sorted(PAIRS)  # no job wrote a model yet: every pair reported, the run still finished
    jobs = {j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]}
    ours = sorted(j for j in jobs if any(j.startswith(f"bqx-{p}-") for p in PAIRS))
    assert len(ours) == 3
    for job in ours:
        if not job.startswith("bqx-gbpusd-"):  # gbpusd's job will "complete" without a model
            play_sagemaker(sm, s3, job, tmp_path / "sm")

    second = run_local(tmp_path / "bars", tmp_path / "out2", aws_settings, PAIRS, echo=echo,
                       train_backend="sagemaker", deploy_backend="sagemaker")
    repo = second.find("deploy-models")[0].artifacts["repository"]["metadata"]
    assert sorted(repo["failed"]) == ["gbpusd"] and "cannot be read" in repo["failed"]["gbpusd"]
    assert repo["pairs"] == ["eurusd", "usdjpy"]
    assert {j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]} == jobs  # reused
    endpoint = sm.describe_endpoint(EndpointName=aws_settings.aws.endpoint_name)
    assert endpoint["EndpointConfigName"] == repo["endpoint_config"]
    manifest = json.loads(s3.get_object(Bucket=aws_settings.aws.bucket, Key="bqx-ml/models/manifest.json")["Body"]
                          .read())
    assert sorted(manifest["models"]) == ["eurusd", "usdjpy"]
    progress = (tmp_path / "progress.txt").read_text()
    assert "train   gbpusd  FAILED" in progress and "FAILED pairs: gbpusd" in progress
