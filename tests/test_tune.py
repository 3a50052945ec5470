"""The tune stage: the search space written once, Optuna locally (seeded, pruning), SageMaker's
HyperParameterTuningJob through botocore's Stubber (moto has no tuning jobs; the Stubber checks every
request against the real service model) with S3 on moto_server, and training with the tuned values."""

from __future__ import annotations

from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber

from bqx.columns import BQX_NOW, fwd_return_column
from bqx.config import Settings
from bqx.dataset import PairDataset, define
from bqx.io import write_json
from bqx.train.local import TrainingFailed
from bqx.tune import run, trials_markdown
from bqx.tune.space import NAMES, SPACE, parameter_ranges, typed

FEATURES = ["technical_idx.rsi_14", "technical_bqx.rsi_14", "moving_avg_idx.ema60_dist"]  # catalog names
TARGET = "target_bqx60_h60"


def _dataset(root: Path, n: int = 900, seed: int = 0, **selection: object) -> PairDataset:
    """A pair's dataset: extract-like features.parquet of a noisy nonlinear target (with the evaluation
    columns) and select's selection.json over it, split 60/20/20."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = 0.6 * x[:, 0] - 0.3 * x[:, 1] * x[:, 2] + 0.2 * np.sin(3 * x[:, 2]) + 0.3 * rng.standard_normal(n)
    head = {"ts_utc": pd.date_range("2026-01-05", periods=n, freq="min", tz="UTC"), TARGET: y, BQX_NOW: 0.0,
            fwd_return_column(60): 0.0}
    (root / "features").mkdir(parents=True)
    pd.DataFrame(head).join(pd.DataFrame(x, columns=FEATURES)).to_parquet(root / "features" / "features.parquet",
                                                                           index=False)
    cut = [0, int(n * 0.6), int(n * 0.8), n]
    splits = {name: [lo, hi] for name, lo, hi in zip(("train", "val", "test"), cut[:-1], cut[1:], strict=True)}
    chosen = define({"pair": "eurusd", "features": FEATURES, "target": TARGET, "settings_hash": "5e77",
                     "catalog_version": "c0ffee", **selection}, list(head), splits)
    write_json(chosen, root / "dataset" / "selection.json")
    return PairDataset.open(root / "dataset", root / "features")


def _tuning(trials: int, **training: object) -> Settings:
    s = Settings()
    return s.replace(training=s.training.__class__(**{**s.training.__dict__, "tune_trials": trials,
                                                       "thread_count": 1, **training}))


def test_the_space_is_one_definition_for_optuna_and_sagemaker():
    ranges = parameter_ranges()
    assert [r["Name"] for r in ranges["IntegerParameterRanges"]] == ["depth", "iterations"]
    assert {r["Name"]: (r["MinValue"], r["MaxValue"], r["ScalingType"]) for r in ranges["ContinuousParameterRanges"]} \
        == {"learning_rate": ("0.01", "0.3", "Logarithmic"), "l2_leaf_reg": ("1.0", "30.0", "Logarithmic")}
    assert typed({"depth": "6.6", "learning_rate": "0.05", "iterations": "399.7", "other": "1"}) == \
        {"depth": 7, "learning_rate": 0.05, "iterations": 400}
    assert set(NAMES) <= set(Settings().training.hyperparameters())  # every tuned name is a training setting


def test_local_search_is_seeded_prunes_and_never_reads_the_test_split(tmp_path):
    d = _dataset(tmp_path / "ds")
    first = run(d, _tuning(12))
    second = run(d, _tuning(12))
    assert first.best == second.best and [t.value for t in first.trials] == [t.value for t in second.trials]
    states = [t.state for t in first.trials]
    assert len(states) == 12 and set(states) <= {"complete", "pruned"} and "pruned" in states
    done = [t for t in first.trials if t.state == "complete"]
    assert first.best_value == min(t.value for t in done)
    assert first.best == next(t.params for t in done if t.value == first.best_value)
    for p in SPACE:
        assert p.low <= first.best[p.name] <= p.high
    lo, hi = d.selection["splits"]["test"]  # the search must not read the test rows: scramble them
    frame = pd.read_parquet(d.features_path)
    noise = np.random.default_rng(9).standard_normal((hi - lo, 4)) * 50
    frame.loc[lo:hi - 1, FEATURES], frame.loc[lo:hi - 1, TARGET] = noise[:, :3].astype(np.float32), noise[:, 3]
    frame.to_parquet(d.features_path, index=False)
    assert run(d, _tuning(12)).best == first.best
    table = trials_markdown(first)
    assert table.count("\n| ") == 13 and "**best**" in table and "| pruned |" in table
    none = run(d, _tuning(0))
    assert none.best == {} and none.trials == [] and "tune_trials = 0" in trials_markdown(none)
    with pytest.raises(ValueError, match="unknown tuning backend 'gpu'"):
        run(d, _tuning(1), "gpu")


def test_training_uses_the_tuned_values(tmp_path):
    from bqx.train.run import run as train

    tuned = {"depth": 3, "learning_rate": 0.2, "l2_leaf_reg": 7.5, "iterations": 150}
    s = _tuning(0, walk_forward_folds=0)
    d = _dataset(tmp_path / "ds", n=1200, settings=s.to_dict(), domain_counts={"idx": 2, "bqx": 1, "cross": 0},
                 candidates=3)
    summary = train(d, s, tmp_path / "m.tar.gz", tuned=tuned)
    assert {k: summary.meta["hyperparameters"][k] for k in tuned} == {k: str(v) for k, v in tuned.items()}


def _summary(i: int, status: str, value: float | None, **params: str) -> dict:
    out = {"TrainingJobName": f"bqx-eurusd-x-{i:03d}-abc", "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:"
           f"training-job/bqx-eurusd-x-{i:03d}-abc", "CreationTime": f"2026-12-02T00:0{i}:00Z",
           "TrainingJobStatus": status, "TunedHyperParameters": params}
    if value is not None:
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": "validation:rmse", "Value": value}
    return out


def test_sagemaker_tuning_job_request_wait_and_trials(tmp_path, aws_settings, moto_server, monkeypatch):
    import bqx.tune.sagemaker as backend

    d = _dataset(tmp_path / "ds")
    settings = aws_settings.replace(training=_tuning(6, tune_parallel=3).training)
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    monkeypatch.setattr(backend, "client", lambda service, _: sm if service == "sagemaker" else s3)
    best = {"depth": "7", "learning_rate": "0.041", "l2_leaf_reg": "4.2", "iterations": "650"}
    with Stubber(sm) as stub:
        stub.add_client_error("describe_hyper_parameter_tuning_job", "ResourceNotFound", "not found")
        stub.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": "arn:aws:sagemaker:"
                                                                "us-east-1:1:hyper-parameter-tuning-job/x"})
        base = {"HyperParameterTuningJobName": "x", "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:1:"
                "hyper-parameter-tuning-job/x", "HyperParameterTuningJobConfig": {"Strategy": "Bayesian",
                "ResourceLimits": {"MaxParallelTrainingJobs": 3}}, "CreationTime": "2026-12-02T00:00:00Z",
                "TrainingJobStatusCounters": {}, "ObjectiveStatusCounters": {}}
        stub.add_response("describe_hyper_parameter_tuning_job",
                          {**base, "HyperParameterTuningJobStatus": "InProgress"})
        stub.add_response("describe_hyper_parameter_tuning_job", {**base, "HyperParameterTuningJobStatus": "Completed",
                                                                  "BestTrainingJob": _summary(1, "Completed", 0.31,
                                                                                              **best)})
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job", {"TrainingJobSummaries": [
            _summary(0, "Completed", 0.35, depth="5", learning_rate="0.1", l2_leaf_reg="3", iterations="300"),
            _summary(1, "Completed", 0.31, **best), _summary(2, "Stopped", None, depth="9", learning_rate="0.2",
                                                             l2_leaf_reg="20", iterations="900")]})
        summary = run(d, settings, "sagemaker")
        stub.assert_no_pending_responses()
    assert summary.best == {"depth": 7, "learning_rate": 0.041, "l2_leaf_reg": 4.2, "iterations": 650}
    assert [(t.state, t.value) for t in summary.trials] == [("completed", 0.35), ("completed", 0.31), ("stopped", None)]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws_settings.aws.bucket)["Contents"]]
    assert any(k.endswith("/input/train/selection.json") for k in keys)


def test_the_tuning_request_and_a_failed_search(aws_settings, monkeypatch):
    from bqx.tune.sagemaker import tuning_request, wait_tuning

    settings = aws_settings.replace(training=_tuning(10, tune_parallel=4).training, spot=True, max_wait_s=7200)
    hp = {"iterations": "300", "depth": "6", "learning_rate": "0.08", "l2_leaf_reg": "3.0", "loss_function": "RMSE",
          "thread_count": "2", "early_stopping_rounds": "50", "random_seed": "42"}
    req = tuning_request("bqx-eurusd-0123456789ab", {"train": "s3://b/t/", "validation": "s3://b/v/"}, hp,
                         settings, "eurusd")
    config, definition = req["HyperParameterTuningJobConfig"], req["TrainingJobDefinition"]
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 4}
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "validation:rmse"}
    assert set(definition["StaticHyperParameters"]) == {"loss_function", "thread_count", "early_stopping_rounds",
                                                        "random_seed"}
    assert definition["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"] == "validation:rmse"
    assert definition["CheckpointConfig"]["S3Uri"].endswith("-tune/") and definition["EnableManagedSpotTraining"]
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sm) as stub:
        stub.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": "arn:aws:sagemaker:"
                                                                "us-east-1:1:hyper-parameter-tuning-job/x"}, req)
        sm.create_hyper_parameter_tuning_job(**req)  # the Stubber validates it against the service model
        stub.add_response("describe_hyper_parameter_tuning_job", {
            "HyperParameterTuningJobName": "x", "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:1:"
            "hyper-parameter-tuning-job/x", "HyperParameterTuningJobConfig": {"Strategy": "Bayesian",
            "ResourceLimits": {"MaxParallelTrainingJobs": 1}}, "CreationTime": "2026-12-02T00:00:00Z",
            "TrainingJobStatusCounters": {}, "ObjectiveStatusCounters": {}, "HyperParameterTuningJobStatus": "Failed",
            "FailureReason": "No training job succeeded after 5 attempts"})
        with pytest.raises(TrainingFailed, match="tuning job x failed: No training job succeeded"):
            wait_tuning(sm, "x", 1.0, 10.0, sleep=lambda s: None)
