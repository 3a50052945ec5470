"""Which family function computes which catalog table, with its feature names and warm-up rows.

A table listed in :data:`bqx.catalog.TABLES` but not here is declared (name, domain, count) and not
yet computed; ``bqx plan`` shows which.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from bqx.config import Settings
from bqx.features import (
    bollinger,
    bqx_core,
    correlation,
    cross_pair,
    cross_sectional,
    dual_domain,
    error_correction,
    event_regime,
    fibonacci,
    hmm_regime,
    moving_avg,
    multi_resolution,
    multi_scale,
    parabolic,
    realized_vol,
    reg,
    spectral,
    spread,
    statistics,
    technical,
    time_features,
    volume,
)
from bqx.features.family import Family, Online, PairInputs

__all__ = ["FAMILIES", "Family", "Online", "PairInputs"]


# in catalog order: the order of the feature columns
MODULES = (
    bqx_core,
    reg,
    technical,
    moving_avg,
    bollinger,
    statistics,
    fibonacci,
    realized_vol,
    time_features,
    spread,
    volume,
    multi_resolution,
    dual_domain,
    event_regime,
    spectral,
    hmm_regime,
    multi_scale,
    correlation,
    cross_sectional,
    cross_pair,
    error_correction,
    parabolic,
)
FAMILIES: dict[str, Family] = {name: fam for module in MODULES for name, fam in module.TABLES.items()}


def compile_declared(settings: Settings) -> Iterator[tuple[str, float, int]]:
    """Compile (or load from the caches) every table declared as expressions, batch and online forms,
    yielding (table, seconds, state slots) as each is ready. The extract image runs it at build
    (``bqx kernels``)."""
    for name, fam in FAMILIES.items():
        if fam.online is None or fam.online.kernel is None:
            continue
        t0 = time.perf_counter()
        kernel = fam.online.kernel(settings)
        kernel.batch({s: np.zeros(2, dtype=np.int64 if s == "ts_ns" else np.float64) for s in kernel.inputs})
        yield name, time.perf_counter() - t0, kernel.state_size
