"""The gate: a model may serve only when it beats the naive forecasts on the test split.

A model's test-split RMSE must be below the zero forecast's (BQX will be 0) and the persistence
forecast's (BQX stays where it is) by at least ``registry.min_improvement`` of theirs. The test split
is held out from training, early stopping and selection, so the comparison is out of sample; both
baselines are scored on the same rows. Missing or undefined figures reject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bqx.config import RegistrySettings

APPROVED, REJECTED, PENDING = "Approved", "Rejected", "PendingManualApproval"
BASELINES = ("zero", "persistence")


@dataclass(frozen=True)
class Decision:
    status: str  # Approved, Rejected or PendingManualApproval (SageMaker's ModelApprovalStatus values)
    reason: str


def decide(metrics: dict[str, float], settings: RegistrySettings) -> Decision:
    if not settings.gate:
        return Decision(APPROVED, "gate off (registry.gate false): every trained model is approved")
    figures = {name: metrics.get(f"{name}_rmse", float("nan")) for name in ("model", *BASELINES)}
    missing = [n for n, v in figures.items() if not isinstance(v, int | float) or not math.isfinite(v)]
    if missing:
        return Decision(REJECTED, f"no test-split RMSE for {', '.join(missing)}")
    margin = settings.min_improvement
    model = figures["model"]
    bar = min(figures[b] for b in BASELINES) * (1 - margin)
    against = ", ".join(f"{b} {figures[b]:.4g}" for b in BASELINES)
    if model >= bar:
        need = f" by {margin:.1%}" if margin else ""
        return Decision(REJECTED, f"test RMSE {model:.4g} does not beat {against}{need} (needs < {bar:.4g})")
    gain = 1 - model / min(figures[b] for b in BASELINES)
    text = f"test RMSE {model:.4g} beats {against} by {gain:.1%}" + (f" (needs {margin:.1%})" if margin else "")
    if settings.manual_approval:
        return Decision(PENDING, text + "; waits for manual approval (bqx approve)")
    return Decision(APPROVED, text)
