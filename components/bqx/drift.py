"""Drift of the selected features, reference (training rows) vs current, per domain.

rate_idx (``idx``) and BQX (``bqx``) features are reported separately, with ``cross`` as a third group
when selected: one Evidently report with a DataDriftPreset section per domain (HTML for people), and a
machine-readable summary (share of drifted features per domain, each feature's score, method and
threshold, a status from the configured shares). Evidently picks each column's method (normed
Wasserstein with threshold 0.1 beyond 1,000 reference rows); distances drift at or above the
threshold, p-values below it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.catalog import DOMAINS, Catalog
from bqx.config import Settings

DOMAIN_TITLES = {"idx": "rate_idx", "bqx": "BQX", "cross": "cross"}
_VALUE_DRIFT = re.compile(r"ValueDrift\(column=(?P<col>.+),method=(?P<method>.+),threshold=(?P<thr>[0-9.eE+-]+)\)$")


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=n, replace=False))
    return frame.iloc[rows]


def is_drift(method: str, score: float, threshold: float) -> bool:
    """p-value tests drift below the threshold; distances drift at or above it."""
    return score < threshold if "p_value" in method.lower() else score >= threshold


def status_of(share: float, settings: Settings) -> str:
    if share >= settings.drift_critical_share:
        return "critical"
    if share >= settings.drift_warning_share:
        return "warning"
    return "ok"


def run_drift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], settings: Settings,
              html_path: str | Path | None = None) -> dict:
    """Evidently drift report per domain; writes the HTML if asked and returns the JSON summary."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    catalog = Catalog(settings)
    groups = {d: [f for f in features if catalog.domain_of(f) == d] for d in DOMAINS}
    groups = {d: cols for d, cols in groups.items() if cols}
    ref = _sample(reference[features], settings.drift_sample_rows, settings.seed).astype(np.float64)
    cur = _sample(current[features], settings.drift_sample_rows, settings.seed + 1).astype(np.float64)
    definition = DataDefinition(numerical_columns=features)
    report = Report([DataDriftPreset(columns=cols) for cols in groups.values()])
    snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                          Dataset.from_pandas(ref, data_definition=definition))
    scores: dict[str, dict] = {}
    for metric in snapshot.dict()["metrics"]:
        m = _VALUE_DRIFT.match(metric["metric_name"])
        if m:
            score, thr = float(metric["value"]), float(m["thr"])
            scores[m["col"]] = {"score": score, "method": m["method"], "threshold": thr,
                                "drift": is_drift(m["method"], score, thr)}
    domains = {}
    for d, cols in groups.items():
        drifted = [c for c in cols if scores[c]["drift"]]
        share = len(drifted) / len(cols)
        domains[d] = {"title": DOMAIN_TITLES[d], "features": len(cols), "drifted": len(drifted),
                      "share": share, "status": status_of(share, settings), "drifted_features": drifted}
    if html_path is not None:
        snapshot.save_html(str(html_path))
    return {"reference_rows": len(ref), "current_rows": len(cur), "domains": domains, "features": scores}
