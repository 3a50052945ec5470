"""Drift scores calibrated on the reference's own variation (pure numpy: arrays in, arrays out).

Two distances per feature between a reference sample and a current one: ``location``, the
Wasserstein-1 distance over the reference's standard deviation (from 64 quantiles), and ``scale``,
|ln| of the ratio of their 10-90% quantile ranges. Features are autocorrelated and many wander like
the price itself, so a fixed threshold fires on every run. Each feature's thresholds are instead the
largest distances the reference shows by itself: windows of the current's length taken from the later
part of the reference, each compared with the reference rows before it (a purge gap apart), every
quarter window. A feature's score is the larger of its two distances over its thresholds (1 = as far
as the reference ever moved on its own; capped at ``CAP`` so one feature cannot dominate), and a
domain's drift index is the mean score of its features: it rises when the domain as a whole has
moved further than its own history explains. The benchmark ``bench/drift_calibration.py`` measures
the false alarm and detection rates of the default index thresholds.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

QUANTILES = (np.arange(64) + 0.5) / 64
LOW, HIGH = 6, 57  # the ~10% and ~90% quantiles of the 64
CAP = 4.0
STRIDE = 0.25  # calibration windows start every quarter window
MIN_PAST = 0.5  # a calibration window needs at least half a window of reference rows before it
MIN_WINDOWS = 4


@dataclass(frozen=True)
class Calibration:
    thresholds: np.ndarray  # (2, F): largest location and scale distance of the reference's windows
    windows: int
    window_rows: int


@contextmanager
def _quiet() -> Iterator[None]:
    """All-NaN columns (a feature still in warm-up) give NaN statistics, not warnings."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def quantiles(x: np.ndarray) -> np.ndarray:
    """(64, F) quantiles of each column, NaN ignored: numpy's nanquantile ("linear" method), computed
    from one sort of every column at once (nanquantile goes column by column: ~4x slower here)."""
    s = np.sort(x, axis=0)  # NaN sort last
    n = len(x) - np.count_nonzero(np.isnan(x), axis=0)
    pos = QUANTILES[:, None] * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    a, b = np.take_along_axis(s, lo, axis=0), np.take_along_axis(s, hi, axis=0)
    with _quiet():
        out = a + (b - a) * (pos - lo)
    out[:, n == 0] = np.nan
    return out


def spread(x: np.ndarray) -> np.ndarray:
    with _quiet():
        return np.nanstd(x, axis=0)


def distances(q_ref: np.ndarray, q_cur: np.ndarray, sd_ref: np.ndarray) -> np.ndarray:
    """(2, F): location (normalised Wasserstein-1) and scale (|ln| quantile-range ratio) distances.
    A column without spread in the reference has no location scale and no scale distance (NaN)."""
    with _quiet():
        loc = np.mean(np.abs(q_ref - q_cur), axis=0) / np.where(sd_ref > 0, sd_ref, np.nan)
        r_ref, r_cur = q_ref[HIGH] - q_ref[LOW], q_cur[HIGH] - q_cur[LOW]
        scale = np.where((r_ref > 0) & (r_cur > 0), np.abs(np.log(r_cur / r_ref)), np.nan)
    return np.stack([loc, scale])


def calibrate(reference: np.ndarray, window: int, gap: int) -> Calibration:
    """Thresholds from the reference's own windows of ``window`` rows against the rows before them.
    A current longer than a third of the reference is calibrated with windows of a third."""
    n = len(reference)
    window = max(min(window, n // 3), 2)
    sd = spread(reference)
    step = max(int(window * STRIDE), 1)
    found = []
    p = n - window
    while p - gap >= MIN_PAST * window and p >= 0:
        found.append(distances(quantiles(reference[: p - gap]), quantiles(reference[p:p + window]), sd))
        p -= step
    if len(found) < MIN_WINDOWS:
        raise ValueError(f"the drift reference holds {n} rows: too few to calibrate on windows of {window} rows "
                         f"(need {MIN_WINDOWS} windows)")
    with _quiet():
        thresholds = np.nanmax(np.stack(found), axis=0)
    return Calibration(thresholds, len(found), window)


def scores(reference: np.ndarray, current: np.ndarray, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """(distances (2, F), score (F,)): each feature's distances and its capped score (NaN: not scored)."""
    d = distances(quantiles(reference), quantiles(current), spread(reference))
    thr = calibration.thresholds
    with _quiet():
        ratio = np.where(thr > 0, d / thr, np.where(d > 0, CAP, 0.0))
        ratio = np.where(np.isfinite(d) & np.isfinite(thr), ratio, np.nan)
        score = np.minimum(np.nanmax(ratio, axis=0), CAP)
    return d, score
