"""The bqx-ml training pipeline: ingest -> panel -> per pair (extract -> lag -> select -> train, drift) -> deploy.

(No ``from __future__ import annotations`` here or in components.py: KFP reads the annotations at runtime.)
"""


import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import List  # noqa: UP035

from kfp import dsl, kubernetes
from kfp.dsl.pipeline_task import PipelineTask

from bqx.config import Settings
from bqx.kubeflow import components
from bqx.pairs import PAIRS
from bqx.plan import task_resources

PIPELINE_NAME = "bqx-train"
PARALLELISM = 8  # pairs processed at once on a cluster (kfp.local caps itself at 2)
IMAGE_UID = 1000
RESOURCES = task_resources(Settings())  # bqx plan's working sets for a pair-year, with headroom
# transient failures (an evicted pod, a throttled API, a node lost) get two more tries, a minute apart and then
# two; a task that fails for a reason of its own fails the same way three times
# (BQX_TASK_RETRIES=0: bqx run --local, where a failure is never transient and kfp.local would sleep it out)
RETRY = {"num_retries": int(os.environ.get("BQX_TASK_RETRIES", "2")), "backoff_duration": "60s",
         "backoff_factor": 2.0, "backoff_max_duration": "600s"}


@contextmanager
def _container_check_without_stack() -> Iterator[None]:
    """kfp (2.17) checks that a task has a container before each resource setter with ``inspect.stack()``,
    which reads the source of every frame on the stack: three setters per task made importing this module
    take about 2 s, paid at every ``bqx run --local`` and ``bqx compile``. While our setters run, the
    same check with the same message takes the caller's name from its frame instead."""
    def check(self: PipelineTask) -> None:
        if self.container_spec is None:
            raise ValueError(f"{sys._getframe(1).f_code.co_name} can only be used on single-step components, not "
                             "pipelines used as components, or special components like importers.")

    original = PipelineTask._ensure_container_spec_exists
    PipelineTask._ensure_container_spec_exists = check  # type: ignore[method-assign]
    try:
        yield
    finally:
        PipelineTask._ensure_container_spec_exists = original  # type: ignore[method-assign]


def _stage(task: object, stage: str) -> object:
    """A task named for its stage, with its memory and CPU from bqx plan, the retry policy and a non-root
    security context."""
    r = RESOURCES[stage]
    task.set_display_name(stage)  # type: ignore[attr-defined]
    with _container_check_without_stack():
        task.set_memory_request(r.memory).set_memory_limit(r.memory).set_cpu_request(r.cpu)  # type: ignore[attr-defined]
    if RETRY["num_retries"]:
        task.set_retry(**RETRY)  # type: ignore[attr-defined]
    # the images' own user (images/Dockerfile); KFP's driver also drops every capability and forbids
    # privilege escalation for tasks with a security context
    kubernetes.set_security_context(task, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, run_as_non_root=True)
    return task


# The ack backends label their custom resources with the run: Argo labels every pod of a run with its
# workflow's name, and the downward API hands it to the task without entering KFP's cache key.
RUN_ENV, RUN_FIELD = "BQX_RUN", "metadata.labels['workflows.argoproj.io/workflow']"


def _with_run_label(task: object) -> object:
    kubernetes.use_field_path_as_env(task, env_name=RUN_ENV, field_path=RUN_FIELD)
    return task


def _ingest_and_panel(source: str, pairs: list, settings_json: str) -> tuple:
    """The shared head of both pipelines: validated bars and the cross-pair panel."""
    ingest = _stage(components.ingest_bars(source=source, pairs=pairs, settings_json=settings_json), "ingest")
    # A recurring run reads the same `source` every time while the bars under it grow: ingest always reads
    # them afresh, so every later task sees new inputs and none is served stale from KFP's cache.
    ingest.set_caching_options(False)
    panel = components.build_panel(bars=ingest.outputs["bars"], pairs=pairs,  # type: ignore[attr-defined]
                               settings_json=ingest.outputs["panel"])  # type: ignore[attr-defined]
    return ingest, _stage(panel, "panel")


def _settings(ingest: object, stage: str) -> object:
    """The sections of the run's settings that ``stage`` reads, as ingest handed them out."""
    return ingest.outputs[stage]  # type: ignore[attr-defined]


def _extract(ingest: object, panel: object, pair: object) -> object:
    extract = components.extract_features(bars=ingest.outputs["bars"], panel=panel.outputs["panel"], pair=pair,  # type: ignore[attr-defined]
                                      settings_json=_settings(ingest, "extract"))
    return _stage(extract, "extract")


@dsl.pipeline(name=PIPELINE_NAME, description="FX forecasting: rate_idx/BQX features, one CatBoost model per pair, "
                                              "multi-model deployment, rate_idx/BQX drift.")
def bqx_pipeline(
    source: str,
    pairs: List[str] = list(PAIRS),  # noqa: UP006, B006
    settings_json: str = "{}",
    train_backend: str = "local",
    deploy_backend: str = "local",
) -> dsl.Model:
    ingest, panel = _ingest_and_panel(source, pairs, settings_json)
    with dsl.ParallelFor(pairs, parallelism=PARALLELISM, name="per-pair") as pair:
        extract = _extract(ingest, panel, pair)
        features = extract.outputs["features"]
        lag = _stage(components.lag_features(features=features, pair=pair, settings_json=_settings(ingest, "lag")),
                     "lag")
        select = _stage(components.select_features(candidates=lag.outputs["candidates"], features=features, pair=pair,
                                               settings_json=_settings(ingest, "select")), "select")
        tune = _with_run_label(_stage(components.tune_model(
            dataset=select.outputs["dataset"], features=features, pair=pair, backend=train_backend,
            settings_json=_settings(ingest, "tune")), "tune"))
        train = _with_run_label(_stage(components.train_model(
            dataset=select.outputs["dataset"], features=features, tuned=tune.outputs["tuned"], pair=pair,
            backend=train_backend, settings_json=_settings(ingest, "train")), "train"))
        _stage(components.drift_report(dataset=select.outputs["dataset"], features=features,
                                       model=train.outputs["model"], pair=pair,
                                       settings_json=_settings(ingest, "drift")), "drift")
    deploy = _with_run_label(_stage(components.deploy_models(
        models=dsl.Collected(train.outputs["model"]), backend=deploy_backend,
        settings_json=_settings(ingest, "deploy")), "deploy"))
    return deploy.outputs["repository"]


PREDICT_PIPELINE_NAME = "bqx-predict"


@dsl.pipeline(name=PREDICT_PIPELINE_NAME, description="Batch prediction: every bar of a span for every pair of a "
                                                      "model repository, with the features serving computes.")
def bqx_predict_pipeline(
    source: str,
    model_repository: str,
    pairs: List[str] = list(PAIRS),  # noqa: UP006, B006
    settings_json: str = "{}",
    since: str = "",
    backend: str = "local",
) -> dsl.Dataset:
    ingest = _stage(components.ingest_bars(source=source, pairs=pairs, settings_json=settings_json), "ingest")
    ingest.set_caching_options(False)  # the same source may hold new bars
    predict = _stage(components.predict_bars(bars=ingest.outputs["bars"], model_repository=model_repository,  # type: ignore[attr-defined]
                                             pairs=pairs, since=since, backend=backend,
                                             settings_json=_settings(ingest, "predict")), "predict")
    return predict.outputs["predictions"]


DRIFT_PIPELINE_NAME = "bqx-drift"


@dsl.pipeline(name=DRIFT_PIPELINE_NAME, description="Recurring drift monitoring: deployed models' references vs "
                                                    "fresh bars, rate_idx and BQX apart, SNS alert on critical.")
def bqx_drift_pipeline(
    source: str,
    model_repository: str,
    pairs: List[str] = list(PAIRS),  # noqa: UP006, B006
    settings_json: str = "{}",
    prediction_log: str = "",
    apply_ab: bool = False,
) -> None:
    ingest, panel = _ingest_and_panel(source, pairs, settings_json)
    with dsl.If(prediction_log != "", name="a-b-test"):  # an A/B test is judged on what was served
        ab = _stage(components.decide_ab(bars=ingest.outputs["bars"], model_repository=model_repository,  # type: ignore[attr-defined]
                                         prediction_log=prediction_log, apply=apply_ab,
                                         settings_json=_settings(ingest, "drift")), "drift")
        ab.set_display_name("ab-decide")  # type: ignore[attr-defined]
    with dsl.ParallelFor(pairs, parallelism=PARALLELISM, name="per-pair") as pair:
        extract = _extract(ingest, panel, pair)
        _stage(components.monitor_drift(features=extract.outputs["features"], model_repository=model_repository,
                                    prediction_log=prediction_log, pair=pair,
                                    settings_json=_settings(ingest, "drift")), "drift")


# kind -> (pipeline name, function): what `bqx compile`, kfp.local and the manifests build from
PIPELINES = {"train": (PIPELINE_NAME, bqx_pipeline), "drift": (DRIFT_PIPELINE_NAME, bqx_drift_pipeline),
             "predict": (PREDICT_PIPELINE_NAME, bqx_predict_pipeline)}

