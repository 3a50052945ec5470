"""The train stage's walk-forward folds: purged, in time order, and fitted on every ``fit_stride``-th row."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bqx.config import Settings
from bqx.splits import purge_rows, thinned
from bqx.train.walk_forward import folds, walk_forward

SETTINGS = Settings().replace(training=dataclasses.replace(Settings().training, iterations=40, depth=3,
                                                                 thread_count=1))


def test_thinned_keeps_the_newest_row_and_every_kth_before_it():
    assert thinned(5, 15, 4).tolist() == [6, 10, 14]
    assert thinned(0, 3, 1).tolist() == [0, 1, 2]
    assert thinned(0, 3, 10).tolist() == [2]
    assert thinned(4, 4, 2).tolist() == []


def test_each_fold_fits_and_stops_before_its_block_with_purge_gaps():
    gap = purge_rows(SETTINGS)
    out = folds(20_000, 8_000, SETTINGS)
    assert len(out) == SETTINGS.training.walk_forward_folds
    assert out[0].test[0] == 8_000 and out[-1].test[1] == 20_000
    for f, nxt in zip(out, out[1:], strict=False):
        assert f.test[1] == nxt.test[0]
    for f in out:
        assert f.fit[0] == 0 and f.fit[1] + gap <= f.early[0] and f.early[1] + gap <= f.test[0]


def _splits(n: int) -> list[pd.DataFrame]:
    """Train, validation and test rows whose target is a clean function of x."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "target": 0.5 * x[:, 0] + 0.05 * rng.standard_normal(n)})
    return [frame.iloc[: int(n * 0.4)], frame.iloc[int(n * 0.4): int(n * 0.7)], frame.iloc[int(n * 0.7):]]


@pytest.mark.parametrize("stride", [1, 3])
def test_a_fold_learns_from_every_kth_training_row_only_and_predicts_every_row(stride: int):
    settings = SETTINGS.replace(fit_stride=stride, walk_forward_folds=1)
    frames = _splits(6_000)
    (fold,) = folds(6_000, len(frames[0]), settings)
    skipped = np.setdiff1d(np.arange(*fold.fit), thinned(*fold.fit, 3))
    poisoned = [f.copy() for f in frames]  # the training rows a stride-3 fit skips get a wild target
    poisoned[0].loc[skipped, "target"] = 100.0
    pooled = walk_forward(poisoned, ["a", "b"], "target", settings)
    assert len(pooled) == fold.test[1] - fold.test[0]  # every out-of-sample row predicted
    assert (pooled["prediction"].abs().max() < 3) == (stride == 3)
