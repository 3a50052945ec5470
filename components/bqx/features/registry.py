"""Which family function computes which catalog table, with its feature names and warm-up rows.

A table listed in :data:`bqx.catalog.TABLES` but not here is declared (name, domain, count) and not
yet computed; ``bqx plan`` shows which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bqx.config import Settings
from bqx.features import bqx_core, reg, technical


@dataclass(frozen=True)
class PairInputs:
    """The series a pair's tables are computed from (float64, one value per bar, rows after baseline)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    idx: np.ndarray  # rate_idx
    bqx: np.ndarray  # primary BQX series (NaN during its warm-up)


@dataclass(frozen=True)
class Family:
    names: Callable[[Settings], list[str]]
    compute: Callable[[PairInputs, Settings], dict[str, np.ndarray]]
    warmup: Callable[[Settings], int]


FAMILIES: dict[str, Family] = {
    "bqx": Family(bqx_core.names, lambda inp, s: bqx_core.compute(inp.idx, s), bqx_core.warmup),
    "reg_idx": Family(
        lambda s: reg.names(s.reg_windows),
        lambda inp, s: reg.compute(inp.idx, s.reg_windows),
        lambda s: reg.warmup(s.reg_windows),
    ),
    "reg_bqx": Family(
        lambda s: reg.names(s.reg_windows),
        lambda inp, s: reg.compute(inp.bqx, s.reg_windows),
        lambda s: bqx_core.primary_warmup(s) + reg.warmup(s.reg_windows),
    ),
    "technical_idx": Family(
        lambda s: technical.names(), lambda inp, s: technical.compute(inp.idx), lambda s: technical.WARMUP
    ),
    "technical_bqx": Family(
        lambda s: technical.names(),
        lambda inp, s: technical.compute(inp.bqx),
        lambda s: bqx_core.primary_warmup(s) + technical.WARMUP,
    ),
}
