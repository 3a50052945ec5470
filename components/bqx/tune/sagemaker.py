"""Tuning on SageMaker: one HyperParameterTuningJob per pair (Bayesian search, the objective
``validation:rmse`` parsed from the training logs by the training jobs' MetricDefinitions).

Each trial is a training job of the training image on the pair's channels: the training definition is
the sagemaker training backend's request, less the tuned hyperparameters, plus the search space's
ranges. Names derive from the inputs (32 characters at most, as SageMaker requires), so a rerun finds
the finished tuning job instead of paying for it again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from bqx.aws import client, require, tags
from bqx.config import Settings
from bqx.dataset import PairDataset
from bqx.train.channels import channels_of
from bqx.train.local import hyperparameters_for
from bqx.train.sagemaker import call, poll_job, training_request, upload_channels
from bqx.tune.space import NAMES, parameter_ranges, typed
from bqx.tune.summary import Trial

OBJECTIVE = {"Type": "Minimize", "MetricName": "validation:rmse"}
# the members of CreateTrainingJob that a tuning job's TrainingJobDefinition takes as they are
DEFINITION_KEYS = ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                   "StoppingCondition", "VpcConfig", "EnableManagedSpotTraining", "CheckpointConfig")


def tuning_name(pair: str, selection: dict, static: dict[str, str], trials: int) -> str:
    digest = hashlib.sha256(json.dumps([selection["features"], selection["settings_hash"], static, trials,
                                        parameter_ranges()], sort_keys=True).encode()).hexdigest()[:12]
    return f"bqx-{pair}-{digest}"  # 23 characters


def search_of(dataset: PairDataset, settings: Settings, pair: str) -> tuple[str, dict[str, str]]:
    """The tuning job's name and the training hyperparameters it starts from, for this pair's dataset."""
    selection = dataset.selection
    hp = hyperparameters_for(settings.training)
    static = {k: v for k, v in hp.items() if k not in NAMES}
    return tuning_name(pair, selection, static, settings.training.tune_trials), hp


def upload_search(s3: Any, dataset: PairDataset, settings: Settings, name: str) -> dict[str, str]:  # noqa: ANN401
    """Upload the dataset's train and validation channels under ``{prefix}/tuning/{name}/input``."""
    a = settings.aws
    prefix = f"{a.prefix}/tuning/{name}/input"
    with channels_of(dataset) as channels:
        return upload_channels(s3, a.bucket, prefix, channels)


def tuning_request(name: str, uris: dict[str, str], hyperparameters: dict[str, str], settings: Settings,
                   pair: str) -> dict:
    """CreateHyperParameterTuningJob: the training request's definition, the space, the trial budget."""
    t = settings.training
    job = training_request(name, uris, hyperparameters, settings, pair)
    definition = {k: job[k] for k in DEFINITION_KEYS if k in job}
    definition["StaticHyperParameters"] = {k: v for k, v in hyperparameters.items() if k not in NAMES}
    if "CheckpointConfig" in definition:  # trials must not resume each other's checkpoints
        definition["CheckpointConfig"] = {**definition["CheckpointConfig"],
                                          "S3Uri": definition["CheckpointConfig"]["S3Uri"].rstrip("/") + "-tune/"}
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian", "HyperParameterTuningJobObjective": OBJECTIVE,
            "ResourceLimits": {"MaxNumberOfTrainingJobs": t.tune_trials,
                               "MaxParallelTrainingJobs": min(t.tune_trials, t.tune_parallel)},
            "ParameterRanges": parameter_ranges(), "TrainingJobEarlyStoppingType": "Auto"},
        "TrainingJobDefinition": definition,
        "Tags": tags(settings, pair=pair, settings=settings.settings_hash()),
    }


def trials_of(summaries: list[dict]) -> list[Trial]:
    """ListTrainingJobsForHyperParameterTuningJob's summaries as trials, in the order they started."""
    out = []
    for i, s in enumerate(sorted(summaries, key=lambda s: str(s.get("CreationTime", "")))):
        metric = (s.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
        out.append(Trial(i, typed(s.get("TunedHyperParameters", {})), None if metric is None else float(metric),
                         str(s.get("TrainingJobStatus", "")).lower()))
    return out


def wait_tuning(sm: Any, name: str, poll_s: float, timeout_s: float,  # noqa: ANN401
                sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll until the tuning job ends with a best trial."""
    return poll_job(lambda: call(sm.describe_hyper_parameter_tuning_job, sleep, HyperParameterTuningJobName=name),
                    "HyperParameterTuningJobStatus", f"tuning job {name}", poll_s, timeout_s, sleep,
                    done=lambda desc: "BestTrainingJob" in desc)


def tune_sagemaker(dataset: PairDataset, settings: Settings, pair: str, sleep: Callable[[float], None] = time.sleep
                   ) -> tuple[dict[str, float | int], list[Trial]]:
    require(settings, "bucket", "role_arn", "train_image")
    a = settings.aws
    name, hp = search_of(dataset, settings, pair)
    sm, s3 = client("sagemaker", settings), client("s3", settings)
    from botocore.exceptions import ClientError

    try:
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
            raise
        call(sm.create_hyper_parameter_tuning_job, sleep,
             **tuning_request(name, upload_search(s3, dataset, settings, name), hp, settings, pair))
    desc = wait_tuning(sm, name, a.poll_s, a.wait_timeout_s, sleep)
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name)
    found = trials_of([s for page in pages for s in page["TrainingJobSummaries"]])
    return typed(desc["BestTrainingJob"]["TunedHyperParameters"]), found
