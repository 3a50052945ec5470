"""Targets: ``target_bqx{W}_h{H}(t) = bqx_W(t + H)``, the BQX a model must predict H rows ahead.

Rows whose target would reach past the last bar are NaN here and dropped by :mod:`bqx.splits`; a
target is never filled.
"""

from __future__ import annotations

import numpy as np

from bqx.config import Settings, target_column
from bqx.features.bqx_core import bqx_series


def lead(x: np.ndarray, h: int) -> np.ndarray:
    """x[t + h] (NaN for the last h rows)."""
    out = np.full(len(x), np.nan)
    if h < len(x):
        out[: len(x) - h] = x[h:]
    return out


def compute(idx: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """One float64 target column per configured horizon (the first is the training target)."""
    series = bqx_series(idx, settings.target_window, settings.bqx_version)
    return {target_column(settings.target_window, h): lead(series, h) for h in settings.horizons}
