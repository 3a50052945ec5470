"""The search space of the tune stage, written once: Optuna draws from it locally, and SageMaker's (and
ACK's) HyperParameterTuningJob gets it as ParameterRanges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    name: str  # CatBoost's (and the training entrypoint's) hyperparameter name
    low: float
    high: float
    integer: bool
    log: bool
    step: int = 1  # integers: the grid step


SPACE: tuple[Param, ...] = (
    Param("depth", 4, 10, integer=True, log=False),
    Param("learning_rate", 0.01, 0.3, integer=False, log=True),
    Param("l2_leaf_reg", 1.0, 30.0, integer=False, log=True),
    Param("iterations", 100, 1000, integer=True, log=False, step=50),
)
NAMES = tuple(p.name for p in SPACE)


def suggest(trial: Any) -> dict[str, float | int]:  # noqa: ANN401 (an optuna.Trial)
    """One point of the space from an Optuna trial."""
    out: dict[str, float | int] = {}
    for p in SPACE:
        if p.integer:
            out[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=p.step)
        else:
            out[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
    return out


def parameter_ranges() -> dict[str, list[dict[str, str]]]:
    """SageMaker's ParameterRanges (values as strings, as the API takes them)."""
    ints = [{"Name": p.name, "MinValue": str(int(p.low)), "MaxValue": str(int(p.high)),
             "ScalingType": "Logarithmic" if p.log else "Linear"} for p in SPACE if p.integer]
    floats = [{"Name": p.name, "MinValue": repr(float(p.low)), "MaxValue": repr(float(p.high)),
               "ScalingType": "Logarithmic" if p.log else "Linear"} for p in SPACE if not p.integer]
    return {"IntegerParameterRanges": ints, "ContinuousParameterRanges": floats}


def typed(values: dict[str, str]) -> dict[str, float | int]:
    """Tuned values as the training settings take them (SageMaker reports every value as a string);
    integers found by SageMaker's continuous search of an integer range are rounded."""
    out: dict[str, float | int] = {}
    for p in SPACE:
        if p.name in values:
            v = float(values[p.name])
            out[p.name] = int(round(v)) if p.integer else v
    return out
