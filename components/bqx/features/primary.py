"""The two series every feature is built from: rate_idx (close over the baseline close x 100) and the
BQX series of it (docs/architecture.md, "Formulas").

- ``rate_idx(t) = close(t) / baseline_close * 100``.
- BQX v1 (default): ``bqx_W(t) = sum_{i=1..W} (idx(t-i) - idx(t)) / idx(t)``, backward momentum.
- BQX v3: ``bqx_W(t) = (idx(t) - idx(t-W)) / idx(t-W) * 100``.

The primary BQX series (``bqx_{target_window}`` under the configured version) is what the BQX-domain
tables are computed from and what models predict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from bqx.config import Settings
from bqx.features import latest as lt
from bqx.features.rolling import rolling_sum, shift


def baseline_instant(baseline_date: str) -> pd.Timestamp:
    """The configured baseline date as a UTC instant (a date without a zone is read as UTC)."""
    when = pd.Timestamp(baseline_date)
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")


def baseline_row(ts: pd.DatetimeIndex | pd.Series, baseline_date: str | None) -> int:
    """Row of the baseline close: row 0 without a date, else the first bar at or after ``baseline_date``
    (row 0 if the data starts later; ingest refuses a date outside the data). Rows before it are dropped
    by the extract stage: indexing them against a later close would let the future into their level."""
    if baseline_date is None:
        return 0
    when = baseline_instant(baseline_date)
    idx = np.flatnonzero(pd.DatetimeIndex(ts) >= when)
    if idx.size == 0:
        raise ValueError(f"no bar at or after the baseline date {baseline_date}")
    return int(idx[0])


def rate_idx(close: np.ndarray, baseline_close: float) -> np.ndarray:
    return np.asarray(close, dtype=np.float64) / baseline_close * 100.0


def bqx_series(idx: np.ndarray, window: int, version: str) -> np.ndarray:
    """The BQX series of rate_idx over ``window`` rows, v1 or v3 (see module docstring)."""
    if version == "v1":
        return (shift(rolling_sum(idx, window), 1) - window * idx) / idx
    if version == "v3":
        past = shift(idx, window)
        return (idx - past) / past * 100.0
    raise ValueError(f"unknown BQX version {version!r}")


def primary_bqx(idx: np.ndarray, settings: Settings) -> np.ndarray:
    """The BQX series the technical/REG BQX tables use and the target is built from."""
    return bqx_series(idx, settings.features.target_window, settings.features.bqx_version)


def primary_warmup(settings: Settings) -> int:
    """Rows the primary BQX series is NaN for: a whole target window of rate_idx."""
    return settings.features.target_window


@njit(cache=True)
def bqx_point(idx: np.ndarray, t: int, window: int, v1: bool) -> float:
    """The BQX series of rate_idx at row t (v1 or v3, as :func:`bqx_series`)."""
    if v1:
        return (lt.wsum(idx, t - 1, window) - window * idx[t]) / idx[t]
    past = lt.lag(idx, t, window)
    return (idx[t] - past) / past * 100.0
