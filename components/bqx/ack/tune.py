"""The ack tuning backend: one pair's search as an ACK ``HyperParameterTuningJob`` resource, the same
request as the sagemaker tuning backend. The best trial comes from ``status.bestTrainingJob``; the ACK
status carries no per-trial list, so the trials table holds the best trial only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from bqx.ack.kube import AckError, connect, wait
from bqx.ack.resources import k8s_name, tuning_job
from bqx.artifacts import SELECTION
from bqx.aws import client, require
from bqx.config import Settings
from bqx.train.channels import channels_of
from bqx.train.local import TrainingFailed, hyperparameters_for
from bqx.train.sagemaker import channel_uris, upload_channels
from bqx.tune.sagemaker import tuning_name
from bqx.tune.space import NAMES, typed
from bqx.tune.summary import Trial

KIND = "HyperParameterTuningJob"


def finished(obj: dict) -> bool:
    status = obj.get("status") or {}
    phase = status.get("hyperParameterTuningJobStatus")
    if phase in ("Failed", "Stopped"):
        raise TrainingFailed(f"tuning job {obj['spec']['hyperParameterTuningJobName']} {phase.lower()}: "
                             f"{status.get('failureReason', 'no reason given')}")
    return phase == "Completed" and bool((status.get("bestTrainingJob") or {}).get("tunedHyperParameters"))


def tune_ack(dataset_dir: Path, settings: Settings, pair: str, run: str = "",
             sleep: Callable[[float], None] = time.sleep) -> tuple[dict[str, float | int], list[Trial]]:
    require(settings, "bucket", "role_arn", "train_image")
    a = settings.aws
    selection = json.loads((dataset_dir / SELECTION).read_text())
    hp = hyperparameters_for(settings.training.hyperparameters(), settings.training.seed)
    name = tuning_name(pair, selection, {k: v for k, v in hp.items() if k not in NAMES}, settings.training.tune_trials)
    try:
        kube = connect(settings)
        if kube.get(KIND, k8s_name(name)) is None:
            prefix = f"{a.prefix}/tuning/{name}/input"
            with channels_of(dataset_dir) as channels:
                upload_channels(client("s3", settings), a.bucket, prefix, channels)
            kube.create(tuning_job(name, channel_uris(a.bucket, prefix), hp, settings, pair, run))
        obj = wait(kube, KIND, k8s_name(name), finished, a.poll_s, a.wait_timeout_s, "aws.wait_timeout_s", sleep)
    except AckError as err:
        raise TrainingFailed(str(err)) from None
    best = obj["status"]["bestTrainingJob"]
    metric = (best.get("finalHyperParameterTuningJobObjectiveMetric") or {}).get("value")
    tuned = typed(best["tunedHyperParameters"])
    trial = Trial(0, tuned, None if metric is None else float(metric), str(best.get("trainingJobStatus", "")).lower())
    if not a.ack_keep:
        kube.delete(KIND, obj["metadata"]["name"])
    return tuned, [trial]
