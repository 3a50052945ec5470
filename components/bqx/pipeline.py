"""The bqx-ml training pipeline: ingest -> panel -> per pair (extract -> lag -> select -> train, drift) -> deploy.

(No ``from __future__ import annotations`` here or in stages.py: KFP reads the annotations at runtime.)
"""


from typing import List  # noqa: UP035

from kfp import dsl

from bqx import stages
from bqx.pairs import PAIRS

PIPELINE_NAME = "bqx-train"
PARALLELISM = 8  # pairs processed at once on a cluster (kfp.local caps itself at 2)


def _ingest_and_panel(source: str, pairs: list, settings_json: str) -> tuple:
    """The shared head of both pipelines: validated bars and the cross-pair panel."""
    ingest = stages.ingest_bars(source=source, pairs=pairs, settings_json=settings_json).set_display_name("ingest")
    # A recurring run reads the same `source` every time while the bars under it grow: ingest always reads
    # them afresh, so every later task sees new inputs and none is served stale from KFP's cache.
    ingest.set_caching_options(False)
    panel = stages.build_panel(bars=ingest.outputs["bars"], pairs=pairs, settings_json=settings_json)
    return ingest, panel.set_display_name("panel")


def _extract(ingest: object, panel: object, pair: object, settings_json: str) -> object:
    extract = stages.extract_features(bars=ingest.outputs["bars"], panel=panel.outputs["panel"], pair=pair,  # type: ignore[attr-defined]
                                      settings_json=settings_json)
    return extract.set_display_name("extract")


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
        extract = _extract(ingest, panel, pair, settings_json)
        lag = stages.lag_features(features=extract.outputs["features"], pair=pair, settings_json=settings_json)
        lag.set_display_name("lag")
        select = stages.select_features(candidates=lag.outputs["candidates"], features=extract.outputs["features"],
                                        pair=pair, settings_json=settings_json)
        select.set_display_name("select")
        train = stages.train_model(dataset=select.outputs["dataset"], pair=pair, settings_json=settings_json,
                                   backend=train_backend)
        train.set_display_name("train")
        drift = stages.drift_report(dataset=select.outputs["dataset"], model=train.outputs["model"], pair=pair,
                                    settings_json=settings_json)
        drift.set_display_name("drift")
    deploy = stages.deploy_models(models=dsl.Collected(train.outputs["model"]), backend=deploy_backend,
                                  settings_json=settings_json)
    deploy.set_display_name("deploy")
    return deploy.outputs["repository"]


DRIFT_PIPELINE_NAME = "bqx-drift"


@dsl.pipeline(name=DRIFT_PIPELINE_NAME, description="Recurring drift monitoring: deployed models' references vs "
                                                    "fresh bars, rate_idx and BQX apart, SNS alert on critical.")
def bqx_drift_pipeline(
    source: str,
    model_repository: str,
    pairs: List[str] = list(PAIRS),  # noqa: UP006, B006
    settings_json: str = "{}",
    prediction_log: str = "",
) -> None:
    ingest, panel = _ingest_and_panel(source, pairs, settings_json)
    with dsl.ParallelFor(pairs, parallelism=PARALLELISM, name="per-pair") as pair:
        extract = _extract(ingest, panel, pair, settings_json)
        stages.monitor_drift(features=extract.outputs["features"], model_repository=model_repository,
                             prediction_log=prediction_log, pair=pair, settings_json=settings_json
                             ).set_display_name("drift")
