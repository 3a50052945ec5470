"""Walk-forward evaluation: several purged, expanding-window folds whose out-of-sample rows are pooled.

The rows are the select stage's train, validation and test splits in time order (already cut with
purge gaps). The out-of-sample span (from the first validation row to the end) is cut into
``walk_forward_folds`` consecutive blocks. Fold k trains a fresh CatBoost model, with the run's
hyperparameters, on the rows before block k less a purge gap (every ``fit_stride``-th row, as the
train stage's fit), early-stopping on every row of that window's last part (the run's train/validation
proportions, a purge gap between them), and predicts every row of block k.
So every pooled prediction is made by a model that saw nothing at or after its row, and the pooled
rows are about twice the test split, which is what makes a Sharpe ratio's error readable.
The folds run where the train stage runs (the pod or laptop), whatever the training backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bqx.config import Settings
from bqx.dataset import feature_matrix
from bqx.splits import purge_rows, thinned


@dataclass(frozen=True)
class Fold:
    fit: tuple[int, int]  # inner training rows
    early: tuple[int, int]  # inner early-stopping rows
    test: tuple[int, int]  # out-of-sample block


def folds(n_rows: int, oos_start: int, settings: Settings) -> list[Fold]:
    """Row ranges of each fold over ``n_rows`` time-ordered rows whose out-of-sample span starts at
    ``oos_start``; folds whose training window is too short to split are left out."""
    k, gap = settings.training.walk_forward_folds, purge_rows(settings)
    if k <= 0 or oos_start >= n_rows:
        return []
    edges = np.linspace(oos_start, n_rows, k + 1).astype(int)
    share = settings.splits.train_fraction / (settings.splits.train_fraction + settings.splits.val_fraction)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        window = lo - gap  # rows [0, window) may train fold k
        n_fit = int((window - gap) * share)
        if hi <= lo or n_fit < 30 or window - (n_fit + gap) < 10:
            continue
        out.append(Fold((0, n_fit), (n_fit + gap, window), (lo, hi)))
    return out


def walk_forward(frames: list[pd.DataFrame], features: list[str], target: str, settings: Settings) -> pd.DataFrame:
    """Pooled out-of-sample rows of every fold: the frames' columns other than the features, plus
    ``prediction`` and ``fold``."""
    from catboost import CatBoostRegressor

    x = feature_matrix(frames, features)
    chosen = set(features)
    rows = pd.concat([f[[c for c in f.columns if c not in chosen]] for f in frames], ignore_index=True)
    y = rows[target].to_numpy(dtype=np.float64)
    parts = []
    params = settings.training.hyperparameters()
    early = params.pop("early_stopping_rounds")
    for i, f in enumerate(folds(len(rows), len(frames[0]), settings)):
        model = CatBoostRegressor(**params, random_seed=settings.training.seed, verbose=False,
                                  allow_writing_files=False)
        fit = thinned(*f.fit, settings.training.fit_stride)
        model.fit(x[fit], y[fit], eval_set=(x[slice(*f.early)], y[slice(*f.early)]),
                  early_stopping_rounds=early, use_best_model=True)
        block = rows.iloc[slice(*f.test)].copy()
        block["prediction"] = model.predict(x[slice(*f.test)])
        block["fold"] = i
        parts.append(block)
    if not parts:
        return rows.iloc[:0].assign(prediction=np.zeros(0), fold=np.zeros(0, dtype=int))
    return pd.concat(parts, ignore_index=True)
