"""Targets: ``target_bqx{W}_h{H}(t) = bqx_W(t + H)``, the BQX a model must predict H rows ahead.

Rows whose target would reach past the last bar are NaN here and dropped by :mod:`bqx.splits`; a
target is never filled.
"""

from __future__ import annotations

import numpy as np

from bqx.columns import BQX_NOW, fwd_return_column, target_column
from bqx.config import Settings
from bqx.features.primary import bqx_series


def lead(x: np.ndarray, h: int) -> np.ndarray:
    """x[t + h] (NaN for the last h rows)."""
    out = np.full(len(x), np.nan)
    if h < len(x):
        out[: len(x) - h] = x[h:]
    return out


def compute(idx: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """One float64 target column per configured horizon (the first is the training target)."""
    series = bqx_series(idx, settings.features.target_window, settings.features.bqx_version)
    return {target_column(settings.features.target_window, h): lead(series, h) for h in settings.features.horizons}




def evaluation_columns(settings: Settings) -> list[str]:
    """Non-feature columns carried next to the targets for honest evaluation (never used as features)."""
    return [BQX_NOW, fwd_return_column(settings.features.horizon)]


def evaluation(idx: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """``bqx_now``: the primary BQX series at t (the persistence forecast of the target);
    ``fwd_ret_h{H}``: ln(idx(t+H) / idx(t)) in bps, what a position opened at t earns by t+H."""
    h = settings.features.horizon
    return {BQX_NOW: bqx_series(idx, settings.features.target_window, settings.features.bqx_version),
            fwd_return_column(h): np.log(lead(idx, h) / idx) * 1e4}


def position_sign(version: str) -> int:
    """Which way to trade a predicted BQX: v1 (backward momentum, past minus now) is high after a fall,
    so a high predicted value means a falling price (short); v3 is a plain percent change (long)."""
    return -1 if version == "v1" else 1
