"""Recurring drift monitoring of a deployed pair on fresh bars (the ``bqx-drift`` pipeline).

The model package carries its reference: a sample of the training rows with the model's predictions.
Fresh bars go through the same extract stage; the model's selected columns are built for every fresh
row (lags included), and reference and fresh data are compared feature by feature per domain, plus
the target (where fresh rows already have one) and the predictions: the ones served (the server's
prediction log or the endpoint's Data Capture) when given, else the model's predictions of the fresh rows.
The repository and what was served may be local or on S3 (:mod:`bqx.locations`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from bqx.artifacts import FEATURES
from bqx.config import Settings
from bqx.dataset import PairDataset
from bqx.drift.report import alert, run_drift
from bqx.drift.summary import DriftSummary
from bqx.lag import materialise
from bqx.locations import read_served
from bqx.model_package import load_tarball


def monitor_pair(features_dir: str | Path, model_tarball: str | Path, pair: str, settings: Settings,
                 html_path: str | Path | None = None, prediction_log: str | Path | None = None) -> DriftSummary:
    """With ``prediction_log`` (the server's prediction log or the endpoint's Data Capture, a directory or
    s3:// prefix), prediction drift is measured on what was actually served, on the fresh bars it covers;
    otherwise on the model's predictions of them."""
    loaded = load_tarball(model_tarball)
    if loaded.reference is None:
        raise ValueError(f"model {model_tarball} carries no reference.parquet: retrain it with this version")
    fpath = Path(features_dir) / FEATURES
    target = loaded.selection["target"]
    head = pq.read_table(fpath, columns=["ts_utc", target]).to_pandas()
    rows = np.arange(settings.splits.max_lag, len(head))
    if len(rows) < 100:
        raise ValueError(f"pair {pair}: {len(rows)} fresh rows after warm-up and lags; need at least 100")
    current = materialise(fpath, loaded.features, rows)
    current["target"] = head[target].to_numpy()[rows]
    if prediction_log:
        logged = read_served(prediction_log, pair)
        current["prediction"] = logged.reindex(head["ts_utc"].to_numpy()[rows]).to_numpy()
        current = current[current["prediction"].notna()].reset_index(drop=True)
        if len(current) < 100:
            raise ValueError(f"pair {pair}: the prediction log covers {len(current)} fresh rows; need at least 100")
    else:
        current["prediction"] = loaded.predict(current[loaded.features])
    reference = loaded.reference.rename(columns={target: "target"})
    # the packaged reference is every k-th training row in time order: thin the fresh rows alike
    stride = int(loaded.meta.get("reference_stride") or 1)
    known = current["target"].notna()
    if known.sum() >= 100:  # the target exists H rows after the fact: compare on rows that have it
        summary = run_drift(reference, current[known].iloc[::stride], loaded.features, settings, html_path,
                            outputs=["target", "prediction"], stride=1)
    else:
        summary = run_drift(reference, current.iloc[::stride], loaded.features, settings, html_path,
                            outputs=["prediction"], stride=1)
    return summary.with_run(pair, alert(summary, pair, settings), fresh_rows=int(len(current)),
                            predictions="logged" if prediction_log else "recomputed",
                            model_catalog=loaded.meta.get("catalog_version"))


def training_drift(dataset: PairDataset, model_tarball: str | Path | None, pair: str, settings: Settings,
                   html_path: str | Path | None = None) -> DriftSummary:
    """The training run's drift: training rows (reference) vs test rows (current) of the selected
    features, plus the target and, when the pair has a model, its predictions; alerts when critical."""
    features, target = dataset.features, dataset.target
    frames = dataset.frames(("train", "test"))
    reference, current = frames["train"], frames["test"]
    reference["target"], current["target"] = reference[target], current[target]
    outputs = ["target"]
    if model_tarball is not None:
        loaded = load_tarball(model_tarball)
        reference["prediction"] = loaded.predict(reference[features])
        current["prediction"] = loaded.predict(current[features])
        outputs.append("prediction")
    result = run_drift(reference, current, features, settings, html_path, outputs=outputs)
    return result.with_run(pair, alert(result, pair, settings))


def record(result: DriftSummary, summary: object, metrics: object, status_path: str) -> str:
    """Write a drift result to the KFP outputs (JSON summary with per-group status in its metadata,
    Metrics per group, the status card); returns the one-line progress text."""
    from bqx.io import write_json

    write_json(result.to_json(), summary.path)  # type: ignore[attr-defined]
    for domain, info in result.domains.items():
        metrics.log_metric(f"drift_index_{domain}", info.index)  # type: ignore[attr-defined]
        metrics.log_metric(f"drift_share_{domain}", info.share)  # type: ignore[attr-defined]
        metrics.log_metric(f"drifted_{domain}", info.drifted)  # type: ignore[attr-defined]
        summary.metadata[f"status_{domain}"] = info.status  # type: ignore[attr-defined]
    summary.metadata["pair"] = result.pair  # type: ignore[attr-defined]
    Path(status_path).write_text(status_markdown(result))
    return result.line()


def status_markdown(summary: DriftSummary) -> str:
    lines = [f"# Drift status: {summary.pair}", "", f"Reference {summary.reference_rows} rows, current "
             f"{summary.current_rows} rows.", "", "| group | drift index | past threshold | status |",
             "|---|---:|---:|---|"]
    for info in summary.domains.values():
        lines.append(f"| {info.title} | {info.index:.2f} | {info.drifted} of {info.features} | **{info.status}** |")
    if summary.alert_message_id:
        lines += ["", f"Alert published (SNS message {summary.alert_message_id})."]
    return "\n".join(lines) + "\n"

