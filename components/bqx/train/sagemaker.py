"""SageMaker training backend: the same entrypoint as the local backend, as a SageMaker training job.

Per pair: upload the channels to ``s3://{bucket}/{prefix}/jobs/{job}/input/{channel}/``, call
CreateTrainingJob (training image, role, instance type and count, stopping condition, output path,
string hyperparameters, tags), poll DescribeTrainingJob with a growing interval until it ends, raise
:class:`TrainingFailed` with the job's FailureReason if it failed or stopped, and download the
model.tar.gz SageMaker wrote, repacked byte-reproducibly. Job names are deterministic (pair, selection
and settings hashes), so a rerun of the same inputs finds the finished job instead of training again;
one that failed or was stopped in an earlier run is retried under the next attempt name (``-a2``, ...).
Throttled calls are retried with backoff; other refusals fail the pair with AWS's code and message.
Options: managed spot training with checkpoints, a VPC, a KMS key, tags; MetricDefinitions chart the
metrics the entrypoint prints.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bqx.artifacts import META, SELECTION
from bqx.aws import client, require, split_s3, tags
from bqx.config import Settings
from bqx.model_package import PackageError, unpacked, write_tarball
from bqx.polling import poll
from bqx.train import attempts
from bqx.train.local import TrainingFailed

TERMINAL = {"Completed", "Failed", "Stopped"}


def job_name(pair: str, selection: dict, hyperparameters: dict[str, str]) -> str:
    """bqx-{pair}-{12 hex of inputs}: at most 63 characters of [a-zA-Z0-9-] as SageMaker requires."""
    digest = hashlib.sha256(json.dumps([selection["features"], selection["settings_hash"], hyperparameters],
                                       sort_keys=True).encode()).hexdigest()[:12]
    return f"bqx-{pair}-{digest}"


CHANNELS = ("train", "validation")


def channel_uris(bucket: str, prefix: str, names: tuple[str, ...] = CHANNELS) -> dict[str, str]:
    """Where each channel's files go: ``s3://{bucket}/{prefix}/{channel}/``."""
    return {name: f"s3://{bucket}/{prefix}/{name}/" for name in names}


def upload_channels(s3: Any, bucket: str, prefix: str, channels: dict[str, Path]) -> dict[str, str]:  # noqa: ANN401
    uris = channel_uris(bucket, prefix, tuple(channels))
    for name, folder in channels.items():
        for f in sorted(Path(folder).iterdir()):
            s3.upload_file(str(f), bucket, f"{prefix}/{name}/{f.name}")
    return uris


CHECKPOINT_LOCAL = "/opt/ml/checkpoints"
# what the SageMaker console charts: the entrypoint prints one `bqx-metric name=value` line per metric
METRICS = [{"Name": "validation:rmse", "Regex": r"bqx-metric validation:rmse=([-+0-9.eE]+)"},
           {"Name": "best_iteration", "Regex": r"bqx-metric best_iteration=([0-9]+)"}]


def training_request(name: str, channel_uris: dict[str, str], hyperparameters: dict[str, str], settings: Settings,
                     pair: str) -> dict:
    a = settings.aws
    request: dict = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": a.train_image, "TrainingInputMode": "File",
                                   "MetricDefinitions": METRICS},
        "RoleArn": a.role_arn,
        "InputDataConfig": [
            {"ChannelName": ch, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                                                "S3DataDistributionType": "FullyReplicated"}}}
            for ch, uri in channel_uris.items()
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{a.bucket}/{a.prefix}/jobs/"},
        "ResourceConfig": {"InstanceType": a.instance_type, "InstanceCount": a.instance_count,
                           "VolumeSizeInGB": a.volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": a.max_runtime_s},
        "HyperParameters": hyperparameters,
        "Tags": tags(settings, pair=pair, settings=settings.settings_hash()),
    }
    if a.spot:  # interrupted spot capacity resumes from the checkpoints the entrypoint writes
        request["EnableManagedSpotTraining"] = True
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = a.max_wait_s
        request["CheckpointConfig"] = {"S3Uri": f"s3://{a.bucket}/{a.prefix}/checkpoints/{name}/",
                                       "LocalPath": CHECKPOINT_LOCAL}
    if a.vpc_subnets:
        request["VpcConfig"] = {"Subnets": list(a.vpc_subnets), "SecurityGroupIds": list(a.vpc_security_groups)}
    if a.kms_key_id:
        request["OutputDataConfig"]["KmsKeyId"] = a.kms_key_id
        request["ResourceConfig"]["VolumeKmsKeyId"] = a.kms_key_id
    return request


THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}


def call(fn: Callable[..., Any], sleep: Callable[[float], None] = time.sleep, tries: int = 6,
         failure: type[Exception] = TrainingFailed, **kwargs: Any) -> Any:  # noqa: ANN401
    """One SageMaker call: throttling is retried with a doubling wait (after botocore's own retries); any
    other refusal (ResourceLimitExceeded, ValidationException, AccessDenied ...) fails this pair with
    AWS's code and message, never the whole run."""
    from botocore.exceptions import ClientError

    delay = 2.0
    for attempt in range(tries):
        try:
            return fn(**kwargs)
        except ClientError as err:
            error = err.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if code in THROTTLED and attempt < tries - 1:
                sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            raise failure(f"{err.operation_name}: {code}: {message}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def poll_job(describe: Callable[[], dict], status_key: str, what: str, poll_s: float, timeout_s: float,
             sleep: Callable[[float], None] = time.sleep, done: Callable[[dict], bool] = lambda desc: True,
             failure: type[Exception] = TrainingFailed) -> dict:
    """Describe a SageMaker job until it ends: Completed (and ``done``) returns its description; Failed,
    Stopped or a completion without ``done`` is ``failure`` with the reason; so is ``timeout_s``."""

    def ended(desc: dict) -> bool:
        status = desc[status_key]
        if status in TERMINAL and (status != "Completed" or not done(desc)):
            raise failure(f"{what} {status.lower()}: {desc.get('FailureReason', 'no reason given')}")
        return status in TERMINAL

    return poll(describe, ended, lambda desc: failure(
        f"{what} still {desc[status_key]} after {timeout_s:.0f} s (aws.wait_timeout_s)"), poll_s, timeout_s, sleep)


def wait(sm: Any, name: str, poll_s: float, timeout_s: float,  # noqa: ANN401
         sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll until the training job ends."""
    return poll_job(lambda: call(sm.describe_training_job, sleep, TrainingJobName=name), "TrainingJobStatus",
                    f"training job {name}", poll_s, timeout_s, sleep)


def describe_or_none(describe: Callable[..., dict], sleep: Callable[[float], None] = time.sleep,
                     failure: type[Exception] = TrainingFailed, **name: str) -> dict | None:
    """A SageMaker job's description, or None if no job has that name (SageMaker answers ValidationException);
    ``name`` is the Describe call's name argument (``TrainingJobName=...``)."""
    from botocore.exceptions import ClientError

    try:
        return describe(**name)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return None
        return call(describe, sleep, failure=failure, **name)  # throttled: retried, else named


def current_attempt(sm: Any, base: str, max_attempts: int, sleep: Callable[[float], None] = time.sleep  # noqa: ANN401
                    ) -> tuple[str, dict | None]:
    """The training job to use for these inputs (see :mod:`bqx.train.attempts`)."""
    return attempts.current_attempt(
        base, max_attempts, lambda name: describe_or_none(sm.describe_training_job, sleep, TrainingJobName=name),
        lambda desc: desc["TrainingJobStatus"] in ("Failed", "Stopped"),
        lambda desc: f"{desc['TrainingJobName']}, {desc['TrainingJobStatus'].lower()}: "
                     f"{desc.get('FailureReason', 'no reason given')}")


def fetch_artifact(s3: Any, uri: str, job: str, out_tarball: Path) -> dict:  # noqa: ANN401
    """Download the model.tar.gz a training job wrote and repack it byte-reproducibly (SageMaker's tarball
    carries times and owners, so equal models would give unequal bytes); returns its meta.json."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3(uri)
    out_tarball.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_tarball.with_name(f".{out_tarball.name}.tmp")
    try:
        s3.download_file(bucket, key, str(tmp))
    except ClientError as err:
        tmp.unlink(missing_ok=True)
        raise TrainingFailed(f"training job {job} completed but its model artifact "
                             f"s3://{bucket}/{key} cannot be read: {err}") from err
    try:
        with unpacked(tmp) as d:
            if not (d / META).is_file():
                raise TrainingFailed(f"model artifact of {job} has no meta.json")
            meta = json.loads((d / META).read_text())
            write_tarball(d, out_tarball)
    except PackageError as err:
        raise TrainingFailed(f"model artifact of {job} (s3://{bucket}/{key}): {err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return meta


def train_sagemaker(channels: dict[str, Path], hyperparameters: dict[str, str], out_tarball: Path,
                    settings: Settings, pair: str, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Run one pair's training job and fetch its model.tar.gz; returns the model's meta.json."""
    require(settings, "bucket", "role_arn", "train_image")
    selection = json.loads((channels["train"] / SELECTION).read_text())
    base = job_name(pair, selection, hyperparameters)
    sm, s3 = client("sagemaker", settings), client("s3", settings)
    name, existing = current_attempt(sm, base, settings.aws.max_attempts, sleep)
    if existing is None:
        uris = upload_channels(s3, settings.aws.bucket, f"{settings.aws.prefix}/jobs/{base}/input", channels)
        call(sm.create_training_job, sleep, **training_request(name, uris, hyperparameters, settings, pair))
    desc = wait(sm, name, settings.aws.poll_s, settings.aws.wait_timeout_s, sleep)
    meta = fetch_artifact(s3, desc["ModelArtifacts"]["S3ModelArtifacts"], name, out_tarball)
    if desc.get("TrainingTimeInSeconds") is not None:
        meta["train_seconds"] = float(desc["TrainingTimeInSeconds"])
    meta["training_job"] = name
    return meta
