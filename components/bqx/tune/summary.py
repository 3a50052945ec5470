"""What the tune stage returns: its trials and the values training takes."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, float | int]
    value: float | None  # validation RMSE; None when pruned or failed
    state: str  # complete, pruned, failed (SageMaker: its training job status, lower case)
    best_iteration: int | None = None


@dataclass(frozen=True)
class TuneSummary:
    pair: str
    backend: str
    best: dict[str, float | int]  # {} when no trials ran: train with the settings' values
    trials: list[Trial]
    seconds: float

    @property
    def best_value(self) -> float | None:
        done = [t.value for t in self.trials if t.value is not None]
        return min(done) if done else None

    def hyperparameters_json(self) -> str:
        """What the train stage takes: training-settings overrides."""
        return json.dumps(self.best, sort_keys=True)
