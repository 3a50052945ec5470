"""Walk-forward train / validation / test splits with a purge gap between them.

Rows are in time order. Between consecutive segments ``gap`` rows are left out, with
``gap >= max(horizon, longest lag)``: the last training target (which looks ``horizon`` rows ahead)
ends before the first validation row, and no validation lag reaches back into training rows' targets.
Rows whose target is NaN (no full future) are dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bqx.config import Settings

MIN_SPLIT_ROWS = 30  # usable rows, after both purge gaps, below which a pair cannot be split


def purge_rows(settings: Settings) -> int:
    return max(max(settings.features.horizons), settings.splits.max_lag)


def bars_needed_parts(settings: Settings) -> dict[str, int]:
    """What one pair's bars from the baseline on must cover: extract's warm-up (and one row past it),
    the longest lag, the target's horizon, two purge gaps and the smallest split :func:`bounds` accepts."""
    from bqx.catalog import Catalog

    return {"warm-up": Catalog(settings).warmup_rows() + 1, "longest lag": settings.splits.max_lag,
            "horizon": max(settings.features.horizons), "purge gaps": 2 * purge_rows(settings),
            "splits": MIN_SPLIT_ROWS}


def bars_needed(settings: Settings) -> int:
    return sum(bars_needed_parts(settings).values())


def thinned(lo: int, hi: int, stride: int) -> np.ndarray:
    """Rows ``[lo, hi)`` at every ``stride``-th, counted back from the last, so the newest row is kept."""
    return np.arange(hi - 1, lo - 1, -stride)[::-1]


@dataclass(frozen=True)
class SplitBounds:
    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]
    gap: int


def bounds(n_rows: int, settings: Settings) -> SplitBounds:
    gap = purge_rows(settings)
    usable = n_rows - 2 * gap
    if usable < MIN_SPLIT_ROWS:
        raise ValueError(f"{n_rows} rows are too few to split with a {gap}-row purge gap on both sides")
    n_train = int(usable * settings.splits.train_fraction)
    n_val = int(usable * settings.splits.val_fraction)
    tr = (0, n_train)
    va = (n_train + gap, n_train + gap + n_val)
    te = (va[1] + gap, n_rows)
    return SplitBounds(tr, va, te, gap)


def split_rows(target: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """Row positions of train/val/test in a features frame: rows from the longest lag on that have a
    target, cut in time order with purge gaps."""
    usable = np.flatnonzero(np.isfinite(target))
    usable = usable[usable >= settings.splits.max_lag]
    b = bounds(len(usable), settings)
    return {name: usable[lo:hi] for name, (lo, hi) in (("train", b.train), ("val", b.val), ("test", b.test))}


def split(frame: pd.DataFrame, settings: Settings) -> dict[str, pd.DataFrame]:
    """Drop rows without a target, then cut train/val/test with purge gaps."""
    target = settings.features.target_name
    clean = frame[frame[target].notna()].reset_index(drop=True)
    b = bounds(len(clean), settings)
    return {name: clean.iloc[lo:hi].reset_index(drop=True) for name, (lo, hi) in
            (("train", b.train), ("val", b.val), ("test", b.test))}
