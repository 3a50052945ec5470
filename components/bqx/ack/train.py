"""The ack training backend: one pair's SageMaker training job as an ACK ``TrainingJob`` resource.

The channels go to S3 as on the sagemaker backend, the job spec is that backend's request, and the names
are the same deterministic ones, so a rerun of the same inputs finds the resource (running or done)
instead of training again; a job that failed or that the controller gave up on is retried under the next
attempt name (``-a2`` ...). The model is fetched from ``status.modelArtifacts`` and repacked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from bqx.ack.kube import AckError, Kube, connect, wait
from bqx.ack.resources import is_true, k8s_name, training_job
from bqx.artifacts import SELECTION
from bqx.aws import client, require
from bqx.config import Settings
from bqx.train import attempts
from bqx.train.local import TrainingFailed
from bqx.train.sagemaker import fetch_artifact, job_name, upload_channels

KIND = "TrainingJob"
FAILED = ("Failed", "Stopped")


def _failed(obj: dict) -> bool:
    status = (obj.get("status") or {}).get("trainingJobStatus")
    return status in FAILED or is_true(obj, "ACK.Terminal")


def _why(obj: dict) -> str:
    status = obj.get("status") or {}
    if status.get("failureReason"):
        return str(status["failureReason"])
    terminal = [c for c in status.get("conditions") or [] if c.get("type") == "ACK.Terminal"]
    return str(terminal[0].get("message", "")) if terminal else "no reason given"


def current_attempt(kube: Kube, base: str, max_attempts: int) -> tuple[str, dict | None]:
    """The attempt to use (see :mod:`bqx.train.attempts`), looked up as TrainingJob resources."""
    return attempts.current_attempt(base, max_attempts, lambda name: kube.get(KIND, k8s_name(name)), _failed,
                                    lambda obj: f"{obj['metadata']['name']}: {_why(obj)}")


def completed(obj: dict) -> bool:
    """True once the job is Completed and ACK has synced it; TrainingFailed when SageMaker failed it."""
    status = (obj.get("status") or {}).get("trainingJobStatus")
    if status in FAILED:
        raise TrainingFailed(f"training job {obj['spec']['trainingJobName']} {status.lower()}: {_why(obj)}")
    return status == "Completed" and bool((obj["status"].get("modelArtifacts") or {}).get("s3ModelArtifacts"))


def train_ack(channels: dict[str, Path], hyperparameters: dict[str, str], out_tarball: Path, settings: Settings,
              pair: str, run: str = "", sleep: Callable[[float], None] = time.sleep) -> dict:
    """Create (or find) the pair's TrainingJob, wait for it and fetch its model; returns meta.json."""
    require(settings, "bucket", "role_arn", "train_image")
    a = settings.aws
    selection = json.loads((channels["train"] / SELECTION).read_text())
    base = job_name(pair, selection, hyperparameters)
    try:
        kube = connect(settings)
        name, existing = current_attempt(kube, base, a.max_attempts)
        s3 = client("s3", settings)
        if existing is None:
            uris = upload_channels(s3, a.bucket, f"{a.prefix}/jobs/{base}/input", channels)
            kube.create(training_job(name, uris, hyperparameters, settings, pair, run))
        obj = wait(kube, KIND, k8s_name(name), completed, a.poll_s, a.wait_timeout_s, "aws.wait_timeout_s", sleep)
    except AckError as err:
        raise TrainingFailed(str(err)) from None
    meta = fetch_artifact(s3, obj["status"]["modelArtifacts"]["s3ModelArtifacts"], name, out_tarball)
    meta["training_job"] = name
    meta["ack_resource"] = f"{kube.namespace}/trainingjobs/{obj['metadata']['name']}"
    if not a.ack_keep:  # the job and its artifact stay in SageMaker and S3; only the custom resource goes
        kube.delete(KIND, obj["metadata"]["name"])
    return meta
