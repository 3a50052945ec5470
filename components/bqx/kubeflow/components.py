"""The KFP components: one thin, typed ``@dsl.component`` per stage over the library functions.

Each runs in its stage image (kfp and bqx baked in, nothing installed at run time), so the function
bodies only import bqx, call the stage's library entry and record artifacts and metrics. The run's
settings (one JSON object, ``{}`` = defaults) go to ingest, which checks them whole and hands every
later stage only the sections it reads (``bqx.config.STAGE_SECTIONS``), so a stage's cache key moves only
when its own settings do.
"""


from typing import List, NamedTuple  # noqa: UP035  (KFP reads typing.List annotations)

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from bqx.kubeflow.images import image


@dsl.component(base_image=image("ingest"), install_kfp_package=False)
def ingest_bars(source: str, pairs: List[str], settings_json: str, bars: Output[Dataset],  # noqa: UP006
                report: Output[Markdown]) -> NamedTuple("StageSettings", panel=str, extract=str, lag=str, select=str,
                                                        tune=str, train=str, drift=str, deploy=str, predict=str):
    """Validate and normalise the bars of every pair and check them against the settings (baseline date,
    bar interval, enough bars); nothing is published if one file is bad. Returns each later stage's
    settings: the sections of the run's settings that stage reads."""
    from collections import namedtuple

    from bqx.bars import describe_interval
    from bqx.config import STAGE_SECTIONS, Settings
    from bqx.ingest import ingest
    from bqx.progress import say, work_started
    from bqx.reports import ingest_markdown

    work_started()
    settings = Settings.from_json(settings_json)  # all of it checked here, before any stage's work
    summary = ingest(source, bars.path, pairs, settings)
    bars.metadata["pairs"] = sorted(summary.pairs)
    interval = summary.bar_interval_s
    bars.metadata["bar_interval_s"] = interval
    say("ingest", "all", f"{len(summary.pairs)} pairs, {summary.rows:,} bars validated, "
        f"{describe_interval(interval)} bars")
    if interval != 60:
        say("ingest", "all", f"WARNING: {describe_interval(interval)} bars: the catalog's windows count bars and "
            f"are designed for 1-minute bars (a 60-bar window spans {describe_interval(60 * interval)})")
    with open(report.path, "w") as fh:
        fh.write(ingest_markdown(summary))
    stages = [s for s in STAGE_SECTIONS if s != "ingest"]  # the outputs above, in their order
    return namedtuple("StageSettings", stages)(*(settings.stage_json(s) for s in stages))


@dsl.component(base_image=image("panel"), install_kfp_package=False)
def build_panel(bars: Input[Dataset], pairs: List[str], settings_json: str, panel: Output[Dataset]) -> None:  # noqa: UP006
    """Put every pair on one minute grid: returns, BQX changes, currency strengths (cross-pair inputs)."""
    from dataclasses import asdict

    from bqx.config import Settings
    from bqx.panel import run
    from bqx.progress import say, work_started

    work_started()
    summary = run(bars.path, pairs, Settings.for_stage(settings_json, "panel"), panel.path)
    panel.metadata.update(asdict(summary))
    say("panel", "all", f"{len(summary.pairs)} pairs on {summary.rows:,} grid rows, "
        f"{len(summary.currencies)} currencies")


@dsl.component(base_image=image("extract"), install_kfp_package=False)
def extract_features(bars: Input[Dataset], panel: Input[Dataset], pair: str, settings_json: str,
                     features: Output[Dataset]) -> None:
    """Compute every catalog table of one pair from its bars and the panel (float32, warm-up dropped)."""
    from dataclasses import asdict

    from bqx.config import Settings
    from bqx.extract import run
    from bqx.pair_status import run_isolated
    from bqx.progress import say

    def work() -> None:
        summary = run(bars.path, pair, Settings.for_stage(settings_json, "extract"), features.path, panel.path)
        features.metadata.update(asdict(summary))
        say("extract", pair, f"{summary.rows:,} rows x {summary.features} features")

    run_isolated("extract", pair, [], [features], work)


@dsl.component(base_image=image("lag"), install_kfp_package=False)
def lag_features(features: Input[Dataset], pair: str, settings_json: str, candidates: Output[Dataset]) -> None:
    """The candidate set of one pair: lag plan, purged walk-forward split, the training rows sampled for
    selection (the values stay in the features; select builds them on the sample)."""
    from dataclasses import asdict

    from bqx.config import Settings
    from bqx.lag import run
    from bqx.pair_status import run_isolated
    from bqx.progress import say

    def work() -> None:
        summary = run(features.path, Settings.for_stage(settings_json, "lag"), candidates.path)
        candidates.metadata.update({"pair": pair, **asdict(summary)})
        say("lag", pair, f"{summary.candidates} candidates, sampled on {summary.sample_rows:,} training rows")

    run_isolated("lag", pair, [features], [candidates], work)


@dsl.component(base_image=image("select"), install_kfp_package=False)
def select_features(candidates: Input[Dataset], features: Input[Dataset], pair: str, settings_json: str,
                    dataset: Output[Dataset], metrics: Output[Metrics]) -> None:
    """Select features under the domain quota on training rows; the dataset is the selection over the
    features (``selection.json``: chosen columns, each split's rows), which train, tune and drift build."""
    from bqx.config import Settings
    from bqx.pair_status import run_isolated
    from bqx.progress import say
    from bqx.select import run

    def work() -> None:
        result = run(candidates.path, features.path, pair, Settings.for_stage(settings_json, "select"), dataset.path)
        dataset.metadata.update({"pair": pair, "rows": result.rows, "domain_counts": result.domain_counts})
        for domain, count in result.domain_counts.items():
            metrics.log_metric(f"selected_{domain}", count)
        metrics.log_metric("candidates", result.candidates)
        counts = result.domain_counts
        say("select", pair, f"{len(result.features)} of {result.candidates} (idx {counts['idx']}, "
            f"bqx {counts['bqx']}, cross {counts['cross']})")

    run_isolated("select", pair, [candidates, features], [dataset, metrics], work)


@dsl.component(base_image=image("tune"), install_kfp_package=False)
def tune_model(dataset: Input[Dataset], features: Input[Dataset], pair: str, settings_json: str, backend: str,
               tuned: Output[Artifact], trials: Output[Markdown]) -> None:
    """Search CatBoost's depth, learning rate, l2 and iterations on the validation split (local: Optuna;
    sagemaker/ack: a HyperParameterTuningJob); ``training.tune_trials`` = 0 searches nothing and train
    uses the settings' values. A Markdown table of the trials for the UI."""
    import os

    from bqx.artifacts import TUNED
    from bqx.config import Settings
    from bqx.dataset import PairDataset
    from bqx.io import write_text
    from bqx.pair_status import run_isolated
    from bqx.progress import say
    from bqx.tune import run, trials_markdown

    def work() -> None:
        summary = run(PairDataset.open(dataset.path, features.path), Settings.for_stage(settings_json, "tune"), backend,
                      os.environ.get("BQX_RUN", ""))
        os.makedirs(tuned.path, exist_ok=True)
        write_text(summary.hyperparameters_json(), os.path.join(tuned.path, TUNED))
        tuned.metadata.update({"pair": pair, "trials": len(summary.trials), **summary.best})
        with open(trials.path, "w") as fh:
            fh.write(trials_markdown(summary))
        best = summary.best_value
        say("tune", pair, "no trials (training.tune_trials = 0)" if not summary.trials else
            f"{len(summary.trials)} trials, best validation RMSE {best:.4g}: " +
            ", ".join(f"{k}={v:.3g}" for k, v in sorted(summary.best.items())))

    run_isolated("tune", pair, [dataset, features], [tuned, trials], work)


@dsl.component(base_image=image("train"), install_kfp_package=False)
def train_model(dataset: Input[Dataset], features: Input[Dataset], tuned: Input[Artifact], pair: str,
                settings_json: str, backend: str, model: Output[Model], metrics: Output[Metrics],
                model_card: Output[Markdown], evaluation: Output[HTML]) -> None:
    """Train one pair's CatBoost model on the SageMaker training contract (backend local, sagemaker or ack:
    the ACK controller's TrainingJob resource); evaluate it on the test split
    and by walk-forward folds (model card and an HTML page with equity curves, scatter, importance).

    A failed training job (or a failure upstream) is recorded (status=failed with the stage and the
    reason) instead of failing the run, so the other pairs still deploy; deploy lists the failures."""
    import math
    import os

    from bqx.artifacts import METRICS, MODEL_CARD, MODEL_TARBALL, TUNED
    from bqx.config import Settings
    from bqx.dataset import PairDataset
    from bqx.io import read_json, write_json, write_text
    from bqx.pair_status import run_isolated
    from bqx.progress import say
    from bqx.train.evaluate import headline
    from bqx.train.run import run

    def work() -> None:
        os.makedirs(model.path, exist_ok=True)
        result = run(PairDataset.open(dataset.path, features.path), Settings.for_stage(settings_json, "train"),
                     os.path.join(model.path, MODEL_TARBALL), backend, os.environ.get("BQX_RUN", ""),
                     read_json(os.path.join(tuned.path, TUNED)))
        model.metadata.update({"pair": pair, "status": "trained",
                               **{k: result.meta[k] for k in ("catalog_version", "settings_hash", "n_features",
                                                                 "best_iteration")}})
        for name, value in result.metrics.items():
            if math.isfinite(value):  # undefined figures (a Sharpe ratio on too few trades) are left out
                metrics.log_metric(name, value)
        with open(model_card.path, "w") as fh:
            fh.write(result.model_card)
        # the registry records both with the model (deploy registers every model, the gate reads the metrics)
        write_json(result.metrics, os.path.join(model.path, METRICS))
        write_text(result.model_card, os.path.join(model.path, MODEL_CARD))
        with open(evaluation.path, "w") as fh:
            fh.write(result.evaluation_html)
        say("train", pair, headline(result.metrics))

    if not run_isolated("train", pair, [dataset, features, tuned], [model, metrics, model_card, evaluation], work):
        metrics.log_metric("failed", 1)


@dsl.component(base_image=image("deploy"), install_kfp_package=False)
def deploy_models(models: Input[List[Model]], backend: str, settings_json: str, repository: Output[Model],  # noqa: UP006
                  report: Output[Markdown]) -> None:
    """Publish every trained pair's model.tar.gz under one prefix and (sagemaker, ack) serve them from one
    multi-model endpoint; failed pairs are listed, not deployed."""
    import os
    from pathlib import Path

    from bqx.artifacts import METRICS, MODEL_CARD, MODEL_TARBALL
    from bqx.config import Settings
    from bqx.deploy import ModelRef, run
    from bqx.io import read_json
    from bqx.progress import say, work_started
    from bqx.reports import deploy_markdown

    work_started()
    failed = {m.metadata["pair"]: f"failed at {m.metadata.get('failed_stage', 'train')}: {m.metadata.get('reason', '')}"
              for m in models if m.metadata.get("status") == "failed"}
    refs = [ModelRef(m.metadata["pair"], Path(m.path) / MODEL_TARBALL, dict(m.metadata),
                     read_json(Path(m.path) / METRICS), (Path(m.path) / MODEL_CARD).read_text())
            for m in models if m.metadata.get("status") != "failed"]
    os.makedirs(repository.path, exist_ok=True)
    summary = run(refs, backend, Settings.for_stage(settings_json, "deploy"), repository.path, failed,
                  os.environ.get("BQX_RUN", ""))
    if summary.endpoint:
        e = summary.endpoint
        repository.metadata.update({"endpoint_config": e.endpoint_config, "created": e.created, "updated": e.updated,
                                    "deleted": e.deleted, "uploaded": e.uploaded, "held": e.held})
    repository.metadata.update({"pairs": sorted(summary.repository.models), "failed": failed,
                                "serving": {s.pair: s.serving.version for s in summary.served if s.serving},
                                "not_served": summary.not_served})
    with open(report.path, "w") as fh:
        fh.write(deploy_markdown(summary))
    say("deploy", "all", f"{len(summary.repository.models)} models in {repository.path}"
        + (f"; not approved by the gate: {', '.join(sorted(summary.not_served))}" if summary.not_served else "")
        + (f"; FAILED pairs: {', '.join(sorted(failed))}" if failed else "")
        + (f"; {summary.endpoint.held}" if summary.endpoint and summary.endpoint.held else ""))


@dsl.component(base_image=image("drift"), install_kfp_package=False)
def drift_report(dataset: Input[Dataset], features: Input[Dataset], model: Input[Model], pair: str, settings_json: str,
                 report: Output[HTML], summary: Output[Dataset], metrics: Output[Metrics], status: Output[Markdown]
                 ) -> None:
    """Evidently drift, training rows vs test rows: rate_idx and BQX features apart, plus the target and
    the model's predictions; a warning/critical status per group and an SNS alert when critical."""
    import os

    from bqx.artifacts import MODEL_TARBALL
    from bqx.config import Settings
    from bqx.dataset import PairDataset
    from bqx.drift.run import record, training_drift
    from bqx.pair_status import run_isolated
    from bqx.progress import say

    def work() -> None:  # a pair whose training failed still gets its data's drift, without predictions
        tarball = None if model.metadata.get("status") == "failed" else os.path.join(model.path, MODEL_TARBALL)
        result = training_drift(PairDataset.open(dataset.path, features.path), tarball, pair,
                                Settings.for_stage(settings_json, "drift"), report.path)
        say("drift", pair, record(result, summary, metrics, status.path))

    run_isolated("drift", pair, [dataset, features], [report, summary, metrics, status], work)


@dsl.component(base_image=image("drift"), install_kfp_package=False)
def monitor_drift(features: Input[Dataset], model_repository: str, prediction_log: str, pair: str,
                  settings_json: str, report: Output[HTML], summary: Output[Dataset], metrics: Output[Metrics],
                  status: Output[Markdown]) -> None:
    """Recurring monitoring: a deployed pair's reference (packaged with its model) vs fresh bars; the
    repository and what was served (prediction log or Data Capture) may be local paths or s3:// prefixes."""
    import tempfile

    from bqx.config import Settings
    from bqx.drift.run import monitor_pair, record
    from bqx.locations import model_tarball
    from bqx.pair_status import run_isolated
    from bqx.progress import say

    def work() -> None:
        with tempfile.TemporaryDirectory(prefix="bqx-model-") as tmp:  # the package, from the repository's manifest
            tarball = model_tarball(model_repository, pair, tmp)
            result = monitor_pair(features.path, tarball, pair, Settings.for_stage(settings_json, "drift"), report.path,
                                  prediction_log or None)
        say("drift", pair, record(result, summary, metrics, status.path))

    run_isolated("drift", pair, [features], [report, summary, metrics, status], work)


@dsl.component(base_image=image("drift"), install_kfp_package=False)
def decide_ab(bars: Input[Dataset], model_repository: str, prediction_log: str, apply: bool, settings_json: str,
              verdict: Output[Markdown]) -> str:
    """The running A/B test's verdict: each variant's served answers against the realised targets in the
    fresh bars (registry.ab_* settings); with ``apply``, the winner takes all traffic. Returns the action
    (promote, rollback, wait, or none when no test runs)."""
    from bqx.ab.live import review
    from bqx.config import Settings
    from bqx.locations import read_manifest
    from bqx.progress import say, work_started
    from bqx.reports import ab_markdown

    work_started()
    settings = Settings.for_stage(settings_json, "drift")
    if not read_manifest(model_repository).get("ab"):
        with open(verdict.path, "w") as fh:
            fh.write(ab_markdown(None, None))
        say("ab", "all", "no A/B test is running")
        verdict.metadata["action"] = "none"
        return "none"
    ab, decision, done = review(model_repository, prediction_log, bars.path, settings, apply)
    applied = "" if done is None else f"Applied: the {done.winner} variant serves all traffic ({done.endpoint_config})."
    with open(verdict.path, "w") as fh:
        fh.write(ab_markdown(ab, decision, applied))
    verdict.metadata.update({"action": decision.action, "ab": ab["id"], "applied": bool(applied)})
    say("ab", "all", f"A/B test {ab['id']}: {decision.action}: {decision.why}" + (f"; {applied}" if applied else ""))
    return decision.action


@dsl.component(base_image=image("predict"), install_kfp_package=False)
def predict_bars(bars: Input[Dataset], model_repository: str, pairs: List[str], since: str,  # noqa: UP006
                 backend: str, settings_json: str, predictions: Output[Dataset], report: Output[Markdown]) -> None:
    """Batch prediction: every bar (from ``since`` on) of every pair of the model repository that is in
    ``pairs``, with the features serving computes; one Parquet of ts_utc, pair, prediction, target_model.
    Backend local predicts in the task; sagemaker runs one Batch Transform job per pair."""
    import os

    from bqx.artifacts import PREDICTIONS
    from bqx.config import Settings
    from bqx.locations import repository_pairs
    from bqx.predict import run
    from bqx.progress import say, work_started
    from bqx.reports import predict_markdown

    work_started()
    chosen = [p for p in repository_pairs(model_repository) if p in set(pairs)]
    os.makedirs(predictions.path, exist_ok=True)
    summary = run(bars.path, model_repository, os.path.join(predictions.path, PREDICTIONS), chosen, since or None,
                  progress=lambda pair, text: say("predict", pair, text), backend=backend,
                  settings=Settings.for_stage(settings_json, "predict"))
    predictions.metadata.update({"pairs": [p.pair for p in summary.pairs], "rows": summary.rows})
    with open(report.path, "w") as fh:
        fh.write(predict_markdown(summary))
    say("predict", "all", f"{summary.rows:,} predictions for {len(summary.pairs)} pairs")

