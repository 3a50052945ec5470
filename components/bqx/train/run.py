"""The train stage for one pair: launch training on a backend, evaluate the model on the test split and
walk forward over purged folds, and draw the evaluation page."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bqx.columns import BQX_NOW, fwd_return_column
from bqx.config import Settings
from bqx.dataset import PairDataset
from bqx.model_package import LoadedModel, load_tarball
from bqx.targets import position_sign
from bqx.train.channels import channels_of
from bqx.train.evaluate import evaluate, model_card
from bqx.train.local import hyperparameters_for, train_local


@dataclass(frozen=True)
class TrainSummary:
    meta: dict  # meta.json of the package
    metrics: dict[str, float]  # test split and walk-forward, next to the zero and persistence forecasts
    model_card: str  # Markdown
    evaluation_html: str


BACKENDS = ("local", "sagemaker", "ack")


def run(dataset: PairDataset, settings: Settings, out_tarball: str | Path, backend: str = "local",
        run_label: str = "", tuned: dict[str, float | int] | None = None) -> TrainSummary:
    """Train on a pair's dataset (select's columns of extract's features) and evaluate; on the ``ack``
    backend the TrainingJob resource is labelled with ``run_label`` (the KFP run). ``tuned``: the
    tune stage's values, which replace the training settings' (the walk-forward folds use them too)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown training backend {backend!r} ({', '.join(BACKENDS)})")
    if tuned:
        settings = settings.replace(training=dataclasses.replace(settings.training, **tuned))
    frames = dataset.frames()  # once: the channels and the evaluation read the same rows
    with channels_of(dataset, frames) as channels:
        hp = hyperparameters_for(settings.training)
        if backend == "local":
            meta = train_local(channels, hp, Path(out_tarball))
        else:
            pair = dataset.pair
            if backend == "ack":
                from bqx.ack.train import train_ack

                meta = train_ack(channels, hp, Path(out_tarball), settings, pair, run_label)
            else:
                from bqx.train.sagemaker import train_sagemaker

                meta = train_sagemaker(channels, hp, Path(out_tarball), settings, pair)
    loaded = load_tarball(out_tarball)
    metrics, page = evaluation(loaded, frames, settings)
    card = model_card(str(loaded.selection.get("pair")), metrics, meta, loaded.selection,
                      settings.training.eval_cost_bps)
    return TrainSummary(meta, metrics, card, page)


def evaluation(loaded: LoadedModel, frames: dict[str, pd.DataFrame], settings: Settings) -> tuple[dict, str]:
    """Test-split metrics of the deployed model, walk-forward metrics (``wf_`` keys) pooled over the
    folds, and the evaluation page drawn from the walk-forward rows (the test split without folds)."""
    from bqx.catalog import Catalog
    from bqx.config import interval_s
    from bqx.train import report
    from bqx.train.walk_forward import walk_forward

    target, h = loaded.selection["target"], settings.features.horizon
    fwd, sign = fwd_return_column(h), position_sign(settings.features.bqx_version)
    cost_bps = settings.training.eval_cost_bps
    state = loaded.selection.get("online_state") or {}
    interval = int(state.get("bar_interval_s") or interval_s(settings))
    test = frames["test"]

    def scored(rows: pd.DataFrame, pred: object) -> dict[str, float]:
        return evaluate(rows[target].to_numpy(), pred, rows[BQX_NOW].to_numpy(), rows[fwd].to_numpy(), h, sign,
                        cost_bps, interval)

    metrics = scored(test, loaded.predict(test[loaded.features]))
    metrics["bar_interval_s"] = float(interval)
    pooled = walk_forward([frames["train"], frames["val"], test], loaded.features, target, settings)
    if len(pooled):
        metrics.update({f"wf_{k}": v for k, v in scored(pooled, pooled["prediction"].to_numpy()).items()})
        metrics["wf_folds"] = float(pooled["fold"].nunique())
        shown, where = pooled, f"{metrics['wf_folds']:.0f} walk-forward folds"
    else:
        shown, where = test.assign(prediction=loaded.predict(test[loaded.features])), "the test split"
    catalog = Catalog(settings)
    raw = loaded.model.get_feature_importance()  # type: ignore[attr-defined]
    importance = {f: float(v) for f, v in zip(loaded.features, raw, strict=True)}
    pictures = {
        f"Equity after cost, {where}": report.equity_curves(shown, h, sign, cost_bps, fwd, BQX_NOW),
        f"Predicted vs realised BQX, {where}": report.scatter(shown[target].to_numpy(), shown["prediction"].to_numpy(),
                                                               settings.training.seed),
        "Feature importance of the deployed model": report.importance_chart(
            importance, {f: catalog.domain_of(f) for f in loaded.features}),
    }
    notes = [f"One position per {h}-bar period from the sign of the forecast; half the {cost_bps} bps "
             "round-trip cost per unit of position change. Sharpe ratios are annualised from the bar interval "
             f"({interval} s) and need at least 30 trades."]
    page = report.evaluation_page(str(loaded.selection.get("pair")), metrics, pictures, notes)
    return metrics, page
