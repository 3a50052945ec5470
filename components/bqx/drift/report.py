"""Drift of the selected features, reference (training rows) vs current, per domain.

rate_idx (``idx``) and BQX (``bqx``) features are reported separately, with ``cross`` as a third group
when selected and the target and predictions as a fourth. Scores are calibrated on the reference's own
variation (:mod:`bqx.drift.scores`): each feature's score is its distance from the reference over the
largest distance the reference's own later windows show from their past; a domain's drift index is
the mean score of its features and sets its status (``drift_warning_index``, ``drift_critical_index``).
The HTML page shows, per domain, the index, every feature's score and an Evidently report of the
most drifted features (its method Evidently's normed Wasserstein at the calibrated threshold, unless
``drift_method`` says otherwise), kept to one Evidently bundle so the page stays a few MB.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import math
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.catalog import DOMAINS, Catalog
from bqx.config import Settings
from bqx.drift.scores import calibrate, scores
from bqx.drift.summary import DomainDrift, DriftSummary, FeatureDrift
from bqx.io import write_text
from bqx.pictures import png_uri, pyplot

DOMAIN_TITLES = {"idx": "rate_idx", "bqx": "BQX", "cross": "cross", "output": "target and prediction"}


def status_of(index: float, settings: Settings) -> str:
    if index >= settings.drift.critical_index:
        return "critical"
    if index >= settings.drift.warning_index:
        return "warning"
    return "ok"


def alert(summary: DriftSummary, pair: str, settings: Settings) -> str | None:
    """Publish one SNS message when any domain is critical; returns the message id (None if no alert)."""
    critical = summary.critical()
    if not critical or not settings.drift.sns_topic_arn:
        return None
    from bqx.aws import client

    lines = [f"{v.title}: drift index {v.index:.2f}, {v.drifted} of {v.features} features drifted "
             f"({v.share:.0%})" for v in critical.values()]
    response = client("sns", settings).publish(
        TopicArn=settings.drift.sns_topic_arn, Subject=f"bqx drift critical: {pair}"[:100],
        Message=f"Critical feature drift for {pair}.\n" + "\n".join(lines),
        MessageAttributes={"pair": {"DataType": "String", "StringValue": pair},
                           "domains": {"DataType": "String", "StringValue": ",".join(sorted(critical))}})
    return str(response["MessageId"])


EVIDENTLY_COLUMNS = 12  # columns in the Evidently section (most drifted first, shared out over the groups)
EVIDENTLY_TOP = 6  # most drifted features listed per group


def _score_chart(domains: dict[str, dict], features: dict[str, dict]) -> str:
    """Every feature's calibrated score, a panel per domain, the line at 1 and the domain index."""
    fig, axes = pyplot().subplots(1, len(domains), figsize=(3.2 * len(domains), 3.0), squeeze=False)
    for ax, info in zip(axes[0], domains.values(), strict=True):
        vals = sorted((features[f]["score"] for f in info["columns"] if math.isfinite(features[f]["score"])),
                      reverse=True)
        ax.bar(range(len(vals)), vals, width=1.0, color="#d62728" if info["status"] == "critical" else "#1f77b4")
        ax.axhline(1.0, color="black", lw=0.7)
        ax.axhline(info["index"], color="#ff7f0e", lw=1.2, ls="--")
        ax.set_title(f"{info['title']}: index {info['index']:.2f}", fontsize=9)
        ax.set_ylim(0, 4.1)
        ax.set_xticks([])
    axes[0][0].set_ylabel("score (1 = reference's own range)")
    fig.tight_layout()
    return png_uri(fig, dpi=70)


def _page(domains: dict[str, dict], features: dict[str, dict], evidently_html: str, calibration: dict) -> str:
    """One HTML page: the domain table, the score chart, then one Evidently report of the top features."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>bqx drift</title>",
             "<style>body{font-family:sans-serif;margin:1em}iframe{width:100%;height:1400px;border:1px solid #ccc}"
             "td,th{border:1px solid #ccc;padding:2px 8px}table{border-collapse:collapse}</style></head><body>",
             "<h1>Feature drift by domain</h1><table><tr><th>group</th><th>drift index</th><th>status</th>"
             "<th>features past their threshold</th><th>most drifted</th></tr>"]
    for d, info in domains.items():
        top = ", ".join(f"{html.escape(f)} ({features[f]['score']:.1f})" for f in info["drifted_features"][:3])
        parts.append(f"<tr><td><a href='#{d}'>{info['title']}</a></td><td>{info['index']:.2f}</td>"
                     f"<td><b>{info['status']}</b></td><td>{info['drifted']} of {info['features']} "
                     f"({info['share']:.0%})</td><td>{top or '-'}</td></tr>")
    parts.append(f"</table><p>A feature's score is its distance from the reference (location: normed Wasserstein; "
                 f"scale: quantile range ratio) over the largest the reference itself showed between its later "
                 f"windows of {calibration['window_rows']} rows and their past ({calibration['windows']} windows); "
                 f"the index is the mean score, capped at 4 per feature.</p>")
    parts.append(f"<img alt='scores' src='{_score_chart(domains, features)}'>")
    for d, info in domains.items():
        rows = "".join(f"<tr><td>{html.escape(f)}</td><td>{features[f]['score']:.2f}</td></tr>"
                       for f in info["drifted_features"][:EVIDENTLY_TOP])
        parts.append(f"<section id='{d}'><h2>{info['title']} features</h2><p>index {info['index']:.2f}, status "
                     f"<b>{info['status']}</b></p><table><tr><th>most drifted</th><th>score</th></tr>{rows}</table>"
                     "</section>")
    parts.append("<h2>Evidently: the most drifted features of each group</h2>")
    # inside a double-quoted attribute only & and " need escaping (escaping < and > too would add ~15%)
    srcdoc = evidently_html.replace("&", "&amp;").replace('"', "&quot;")
    parts.append(f"<iframe srcdoc=\"{srcdoc}\"></iframe></body></html>")
    return "".join(parts)


def _import_evidently_meanwhile() -> None:
    """Start importing Evidently (seconds of Python) in a thread while the statistics are computed; the
    page's own import then finds it done or waits for it. Errors surface there, not here."""
    if "evidently.metrics" in sys.modules:
        return

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module("evidently.metrics")

    threading.Thread(target=load, name="bqx-import-evidently", daemon=True).start()


def _evidently(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], thresholds: dict[str, float],
               settings: Settings) -> str:
    """Evidently's view of ``columns``: ValueDrift per column, normed Wasserstein at the calibrated
    threshold unless the settings choose a method or threshold."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    metrics = []
    for c in columns:
        method = settings.drift.feature_methods.get(c, settings.drift.method or "wasserstein")
        thr = settings.drift.feature_thresholds.get(c, settings.drift.threshold)
        if thr is None:
            thr = thresholds[c] if method == "wasserstein" and math.isfinite(thresholds[c]) else None
        metrics.append(ValueDrift(column=c, method=method, **({"threshold": float(thr)} if thr is not None else {})))
    definition = DataDefinition(numerical_columns=columns)
    snapshot = Report(metrics).run(Dataset.from_pandas(current[columns], data_definition=definition),
                                   Dataset.from_pandas(reference[columns], data_definition=definition))
    return snapshot.get_html_str(as_iframe=False)


def run_drift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], settings: Settings,
              html_path: str | Path | None = None, outputs: list[str] | None = None,
              stride: int | None = None) -> DriftSummary:
    """Calibrated drift per domain; writes the HTML page if asked; returns the summary.

    ``reference`` and ``current`` are in time order at the same row spacing; both are thinned to every
    ``stride``-th row (default: enough to keep the reference to 4 x ``drift_sample_rows`` rows).
    ``outputs`` names columns of both frames that are not features (the target, logged predictions):
    they are reported as a fourth group, "target and prediction"."""
    from bqx.splits import purge_rows

    if html_path is not None:
        _import_evidently_meanwhile()
    catalog = Catalog(settings)
    groups = {d: [f for f in features if catalog.domain_of(f) == d] for d in DOMAINS}
    groups = {d: cols for d, cols in groups.items() if cols}
    columns = list(features)
    if outputs:
        groups["output"] = list(outputs)
        columns += list(outputs)
    stride = stride or max(1, math.ceil(len(reference) / (4 * settings.drift.sample_rows)))
    ref = reference[columns].iloc[::stride].astype(np.float64).reset_index(drop=True)
    cur = current[columns].iloc[::stride].astype(np.float64).reset_index(drop=True)
    cal = calibrate(ref.to_numpy(), len(cur), max(1, purge_rows(settings) // stride))
    dist, score = scores(ref.to_numpy(), cur.to_numpy(), cal)
    feats: dict[str, dict] = {}
    for j, c in enumerate(columns):
        feats[c] = {"domain": next(d for d, cols in groups.items() if c in cols), "score": float(score[j]),
                    "location": float(dist[0, j]), "scale": float(dist[1, j]),
                    "location_threshold": float(cal.thresholds[0, j]), "scale_threshold": float(cal.thresholds[1, j]),
                    "drift": bool(score[j] > 1.0)}
    domains = {}
    for d, cols in groups.items():
        scored = [c for c in cols if math.isfinite(feats[c]["score"])]
        drifted = sorted((c for c in scored if feats[c]["drift"]), key=lambda c: -feats[c]["score"])
        index = float(np.mean([feats[c]["score"] for c in scored])) if scored else 0.0
        ranked = sorted(scored, key=lambda c: -feats[c]["score"])
        domains[d] = {"title": DOMAIN_TITLES[d], "features": len(cols), "scored": len(scored), "index": index,
                      "drifted": len(drifted), "share": len(drifted) / len(cols), "status": status_of(index, settings),
                      "drifted_features": drifted, "columns": cols, "ranked": ranked}
    calibration = {"windows": cal.windows, "window_rows": cal.window_rows, "stride": stride}
    if html_path is not None:
        per_group = max(2, EVIDENTLY_COLUMNS // len(domains))
        shown = [c for info in domains.values() for c in info["ranked"][:per_group]]
        thresholds = {c: feats[c]["location_threshold"] for c in shown}
        page = _page(domains, feats, _evidently(ref, cur, shown, thresholds, settings), calibration)
        write_text(page, html_path)
    kept = DomainDrift.__dataclass_fields__
    return DriftSummary(len(ref), len(cur), calibration,
                        {d: DomainDrift(**{k: v for k, v in info.items() if k in kept}) for d, info in domains.items()},
                        {c: FeatureDrift(**f) for c, f in feats.items()})
