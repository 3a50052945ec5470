"""Batch prediction on SageMaker: one Batch Transform job per pair, on the serving image.

Batch Transform runs one model per job (it cannot call a multi-model endpoint), so each pair's
deployed package becomes a SageMaker Model and its feature rows one CSV object. The rows are the ones
the local backend predicts, computed here by the batch engine: a transform job has no history to seed
serving's online state, so it is handed features, not bars. SageMaker splits the CSV by line into
requests of at most ``aws.transform_max_payload_mb`` (MultiRecord), the container answers one
prediction per line (``Accept: text/csv``), and the output is assembled by line in the input's order.

All pairs are submitted before any is waited on, so their jobs run side by side. Names derive from
the model and the rows (``bqx-{pair}-{12 hex}``), so a rerun of the same inputs finds the finished job
and only downloads its output; a job that failed is retried under the next attempt name.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bqx.aws import client, require, split_s3, tags
from bqx.config import Settings
from bqx.locations import is_s3
from bqx.model_package import sha256_of
from bqx.train import attempts
from bqx.train.sagemaker import call, describe_or_none, poll_job

CSV = "text/csv"


class TransformFailed(RuntimeError):
    """A pair's transform job could not be created, failed, or gave an output that does not fit its input."""


@dataclass(frozen=True)
class Submitted:
    pair: str
    job: str
    output_uri: str  # the .out object SageMaker writes
    rows: int


def csv_rows(x: np.ndarray) -> bytes:
    """One line per row, the float32 values at 9 significant digits (they read back as the same float32),
    an empty field for a missing value: the serving container's CSV form."""
    frame = pd.DataFrame(np.asarray(x, dtype=np.float32))
    return frame.to_csv(header=False, index=False, na_rep="", float_format="%.9g", lineterminator="\n").encode()


def job_name(pair: str, model_sha256: str, rows_sha256: str, settings: Settings) -> str:
    a = settings.aws
    digest = hashlib.sha256(f"{model_sha256} {rows_sha256} {a.serve_image} {a.transform_instance_type} "
                            f"{a.transform_max_payload_mb}".encode()).hexdigest()[:12]
    return f"bqx-{pair}-{digest}"  # 23 characters: within SageMaker's 63 for jobs and models


def model_request(name: str, model_uri: str, settings: Settings, pair: str) -> dict:
    """CreateModel: the serving image with the pair's package as its single model (/opt/ml/model)."""
    a = settings.aws
    request: dict = {"ModelName": name, "ExecutionRoleArn": a.role_arn,
                     "PrimaryContainer": {"Image": a.serve_image, "ModelDataUrl": model_uri, "Mode": "SingleModel"},
                     "Tags": tags(settings, pair=pair)}
    if a.vpc_subnets:
        request["VpcConfig"] = {"Subnets": list(a.vpc_subnets), "SecurityGroupIds": list(a.vpc_security_groups)}
    return request


def transform_request(name: str, input_uri: str, output_prefix: str, settings: Settings, pair: str) -> dict:
    """CreateTransformJob: CSV in by line, many lines per request, CSV out assembled by line."""
    a = settings.aws
    request: dict = {
        "TransformJobName": name, "ModelName": name, "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": a.transform_max_payload_mb,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                           "ContentType": CSV, "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": {"S3OutputPath": output_prefix, "Accept": CSV, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": a.transform_instance_type, "InstanceCount": 1},
        "Tags": tags(settings, pair=pair),
    }
    if a.kms_key_id:
        request["TransformOutput"]["KmsKeyId"] = a.kms_key_id
        request["TransformResources"]["VolumeKmsKeyId"] = a.kms_key_id
    return request


def _exists(s3: Any, bucket: str, key: str) -> bool:  # noqa: ANN401
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def model_uri(s3: Any, tarball: Path, repository: str | Path, settings: Settings) -> str:  # noqa: ANN401
    """Where SageMaker reads the package: in place when the repository is on S3, else uploaded once under
    ``{prefix}/transform/models/`` by its content hash."""
    if is_s3(repository):
        return f"{str(repository).rstrip('/')}/{tarball.name}"
    a = settings.aws
    key = f"{a.prefix}/transform/models/{sha256_of(tarball)[:16]}/model.tar.gz"
    if not _exists(s3, a.bucket, key):
        s3.upload_file(str(tarball), a.bucket, key)
    return f"s3://{a.bucket}/{key}"


def submit(pair: str, x: np.ndarray, tarball: Path, repository: str | Path, settings: Settings,
           sleep: Callable[[float], None] = time.sleep) -> Submitted:
    """Upload the pair's rows (and its package if needed) and create its Model and transform job, unless
    a job for the same model and rows exists; nothing is waited on."""
    require(settings, "bucket", "role_arn", "serve_image")
    a = settings.aws
    body = csv_rows(x)
    base = job_name(pair, sha256_of(tarball), hashlib.sha256(body).hexdigest(), settings)
    sm, s3 = client("sagemaker", settings), client("s3", settings)
    name, existing = attempts.current_attempt(
        base, a.max_attempts,
        lambda n: describe_or_none(sm.describe_transform_job, sleep, TransformFailed, TransformJobName=n),
        lambda d: d["TransformJobStatus"] in ("Failed", "Stopped"),
        lambda d: f"{d['TransformJobName']}: {d.get('FailureReason', 'no reason given')}", f"{pair}: transform job",
        TransformFailed)
    root = f"{a.prefix}/transform/{base}"
    input_uri, output_prefix = f"s3://{a.bucket}/{root}/input/", f"s3://{a.bucket}/{root}/output/{name}/"
    if existing is None:
        s3.upload_fileobj(io.BytesIO(body), a.bucket, f"{root}/input/{pair}.csv")
        uri = model_uri(s3, tarball, repository, settings)
        from botocore.exceptions import ClientError

        try:
            sm.describe_model(ModelName=name)
        except ClientError:
            call(sm.create_model, sleep, failure=TransformFailed, **model_request(name, uri, settings, pair))
        call(sm.create_transform_job, sleep, failure=TransformFailed,
             **transform_request(name, input_uri, output_prefix, settings, pair))
    return Submitted(pair, name, f"{output_prefix}{pair}.csv.out", len(x))


def wait(sm: Any, job: Submitted, poll_s: float, timeout_s: float,  # noqa: ANN401
         sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll until the transform job ends; TransformFailed with SageMaker's reason if it failed or stopped."""
    return poll_job(lambda: call(sm.describe_transform_job, sleep, failure=TransformFailed, TransformJobName=job.job),
                    "TransformJobStatus", f"{job.pair}: transform job {job.job}", poll_s, timeout_s, sleep,
                    failure=TransformFailed)


def collect(job: Submitted, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> np.ndarray:
    """Wait for the job and read its predictions (one per input row, in order)."""
    from botocore.exceptions import ClientError

    a = settings.aws
    wait(client("sagemaker", settings), job, a.poll_s, a.wait_timeout_s, sleep)
    bucket, key = split_s3(job.output_uri)
    try:
        text = client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except ClientError as err:
        raise TransformFailed(f"{job.pair}: transform job {job.job} completed but its output {job.output_uri} "
                              f"cannot be read: {err}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != job.rows:
        raise TransformFailed(f"{job.pair}: transform job {job.job} gave {len(lines):,} predictions for "
                              f"{job.rows:,} rows ({job.output_uri})")
    try:
        return np.array([float(line) for line in lines], dtype=np.float64)
    except ValueError as err:
        raise TransformFailed(f"{job.pair}: transform job {job.job} output {job.output_uri} is not one number "
                              f"per line: {err}") from None
