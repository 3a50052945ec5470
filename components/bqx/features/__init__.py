"""Feature families: one module each, pure functions of arrays (float64 in, float32 blocks out).

:mod:`bqx.features.registry` maps catalog tables to the family function that computes them. Importing
the package first drops numba caches built from older versions of its modules
(:mod:`bqx.features.kernel_cache`).
"""

from pathlib import Path as _Path

from bqx.features.kernel_cache import drop_stale as _drop_stale

_drop_stale(_Path(__file__).parent)
