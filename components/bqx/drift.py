"""Drift of the selected features, reference (training rows) vs current, per domain.

rate_idx (``idx``) and BQX (``bqx``) features are reported separately, with ``cross`` as a third group
when selected: one Evidently report per domain, shown as one HTML page with a section each, and a
machine-readable summary (share of drifted features per domain, each feature's score, method and
threshold, a status from the configured shares). Evidently picks each column's method (normed
Wasserstein with threshold 0.1 beyond 1,000 reference rows); distances drift at or above the
threshold, p-values below it.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.catalog import DOMAINS, Catalog
from bqx.config import Settings
from bqx.io import write_text

DOMAIN_TITLES = {"idx": "rate_idx", "bqx": "BQX", "cross": "cross", "output": "target and prediction"}
_VALUE_DRIFT = re.compile(r"ValueDrift\(column=(?P<col>.+),method=(?P<method>.+),threshold=(?P<thr>[0-9.eE+-]+)\)$")


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=n, replace=False))
    return frame.iloc[rows]


# Evidently tests that return p-values (drift below the threshold); the rest return distances.
P_VALUE_TESTS = {"ks", "chisquare", "z", "t_test", "mannw", "anderson", "cramer_von_mises", "fisher_exact",
                 "g_test", "es", "empirical_mmd"}


def is_drift(method: str, score: float, threshold: float) -> bool:
    """p-value tests drift below the threshold; distances (wasserstein, kl_div, psi, ...) at or above it."""
    m = method.lower()
    return score < threshold if ("p_value" in m or m in P_VALUE_TESTS) else score >= threshold


def status_of(share: float, settings: Settings) -> str:
    if share >= settings.drift_critical_share:
        return "critical"
    if share >= settings.drift_warning_share:
        return "warning"
    return "ok"


def preset_options(columns: list[str], settings: Settings) -> dict:
    """DataDriftPreset arguments from the settings: Evidently's defaults unless a method is configured."""
    opts: dict = {}
    if settings.drift_method:
        opts["method"] = settings.drift_method
    if settings.drift_threshold is not None:
        opts["threshold"] = settings.drift_threshold
    methods = {c: m for c, m in settings.drift_feature_methods.items() if c in columns}
    thresholds = {c: t for c, t in settings.drift_feature_thresholds.items() if c in columns}
    if methods:
        opts["per_column_method"] = methods
    if thresholds:
        opts["per_column_threshold"] = thresholds
    return opts


def alert(summary: dict, pair: str, settings: Settings) -> str | None:
    """Publish one SNS message when any domain is critical; returns the message id (None if no alert)."""
    critical = {d: v for d, v in summary["domains"].items() if v["status"] == "critical"}
    if not critical or not settings.drift_sns_topic_arn:
        return None
    from bqx.aws import client

    lines = [f"{v['title']}: {v['drifted']} of {v['features']} features drifted ({v['share']:.0%})"
             for v in critical.values()]
    response = client("sns", settings).publish(
        TopicArn=settings.drift_sns_topic_arn, Subject=f"bqx drift critical: {pair}"[:100],
        Message=f"Critical feature drift for {pair}.\n" + "\n".join(lines),
        MessageAttributes={"pair": {"DataType": "String", "StringValue": pair},
                           "domains": {"DataType": "String", "StringValue": ",".join(sorted(critical))}})
    return str(response["MessageId"])


def _domain_page(sections: dict[str, str], summary: dict[str, dict]) -> str:
    """One HTML page, a section per domain, each holding that domain's Evidently report in an iframe."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>bqx drift</title>",
             "<style>body{font-family:sans-serif;margin:1em}iframe{width:100%;height:1400px;border:1px solid #ccc}"
             "</style></head><body><h1>Feature drift by domain</h1><ul>"]
    for d, info in summary.items():
        parts.append(f"<li><a href='#{d}'>{info['title']}</a>: {info['drifted']} of {info['features']} features "
                     f"drifted ({info['share']:.0%}), status <b>{info['status']}</b></li>")
    parts.append("</ul>")
    for d, page in sections.items():
        parts.append(f"<section id='{d}'><h2>{summary[d]['title']} features</h2>"
                     f"<iframe srcdoc=\"{html.escape(page, quote=True)}\"></iframe></section>")
    parts.append("</body></html>")
    return "".join(parts)


def run_drift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], settings: Settings,
              html_path: str | Path | None = None, outputs: list[str] | None = None) -> dict:
    """Evidently drift per domain; writes the HTML (a section per domain) if asked; returns the summary.

    ``outputs`` names columns of both frames that are not features (the target, logged predictions):
    they are reported as a fourth group, "target and prediction"."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    catalog = Catalog(settings)
    groups = {d: [f for f in features if catalog.domain_of(f) == d] for d in DOMAINS}
    groups = {d: cols for d, cols in groups.items() if cols}
    columns = list(features)
    if outputs:
        groups["output"] = list(outputs)
        columns += list(outputs)
    ref = _sample(reference[columns], settings.drift_sample_rows, settings.seed).astype(np.float64)
    cur = _sample(current[columns], settings.drift_sample_rows, settings.seed + 1).astype(np.float64)
    scores: dict[str, dict] = {}
    pages: dict[str, str] = {}
    for d, cols in groups.items():
        definition = DataDefinition(numerical_columns=cols)
        snapshot = Report([DataDriftPreset(columns=cols, **preset_options(cols, settings))]).run(
            Dataset.from_pandas(cur[cols], data_definition=definition),
            Dataset.from_pandas(ref[cols], data_definition=definition))
        for metric in snapshot.dict()["metrics"]:
            m = _VALUE_DRIFT.match(metric["metric_name"])
            if m:
                score, thr = float(metric["value"]), float(m["thr"])
                scores[m["col"]] = {"domain": d, "score": score, "method": m["method"], "threshold": thr,
                                    "drift": is_drift(m["method"], score, thr)}
        if html_path is not None:
            pages[d] = snapshot.get_html_str(as_iframe=False)
    domains = {}
    for d, cols in groups.items():
        drifted = [c for c in cols if scores[c]["drift"]]
        share = len(drifted) / len(cols)
        domains[d] = {"title": DOMAIN_TITLES[d], "features": len(cols), "drifted": len(drifted),
                      "share": share, "status": status_of(share, settings), "drifted_features": drifted}
    if html_path is not None:
        write_text(_domain_page(pages, domains), html_path)
    return {"reference_rows": len(ref), "current_rows": len(cur), "domains": domains, "features": scores}
