"""The ack tuning backend: one pair's search as an ACK ``HyperParameterTuningJob`` resource, the same
request as the sagemaker tuning backend. The best trial comes from ``status.bestTrainingJob``; the ACK
status carries no per-trial list, so the trials table holds the best trial only."""

from __future__ import annotations

import time
from collections.abc import Callable

from bqx.ack.kube import AckError, connect, wait
from bqx.ack.resources import k8s_name, tuning_job
from bqx.aws import client, require
from bqx.config import Settings
from bqx.dataset import PairDataset
from bqx.train.local import TrainingFailed
from bqx.tune.sagemaker import search_of, upload_search
from bqx.tune.space import typed
from bqx.tune.summary import Trial

KIND = "HyperParameterTuningJob"


def finished(obj: dict) -> bool:
    status = obj.get("status") or {}
    phase = status.get("hyperParameterTuningJobStatus")
    if phase in ("Failed", "Stopped"):
        raise TrainingFailed(f"tuning job {obj['spec']['hyperParameterTuningJobName']} {phase.lower()}: "
                             f"{status.get('failureReason', 'no reason given')}")
    return phase == "Completed" and bool((status.get("bestTrainingJob") or {}).get("tunedHyperParameters"))


def tune_ack(dataset: PairDataset, settings: Settings, pair: str, run: str = "",
             sleep: Callable[[float], None] = time.sleep) -> tuple[dict[str, float | int], list[Trial]]:
    require(settings, "bucket", "role_arn", "train_image")
    a = settings.aws
    name, hp = search_of(dataset, settings, pair)
    try:
        kube = connect(settings)
        if kube.get(KIND, k8s_name(name)) is None:
            uris = upload_search(client("s3", settings), dataset, settings, name)
            kube.create(tuning_job(name, uris, hp, settings, pair, run))
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
