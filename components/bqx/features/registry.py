"""Which family function computes which catalog table, with its feature names and warm-up rows.

A table listed in :data:`bqx.catalog.TABLES` but not here is declared (name, domain, count) and not
yet computed; ``bqx plan`` shows which.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

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
from bqx.features.spec import Kernel

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


# generated kernels a family uses inside its own machinery (multi_scale's per-bucket table), by name
PART_KERNELS: dict[str, Callable[[Settings], Kernel]] = {
    name: build for module in MODULES for name, build in getattr(module, "KERNELS", {}).items()}


def declared(settings: Settings) -> list[str]:
    """The tables declared as expressions (their kernels are generated)."""
    return [name for name, fam in FAMILIES.items() if fam.online is not None and fam.online.kernel is not None]


def generated(settings: Settings) -> list[str]:
    """Every generated kernel: the declared tables', then the parts of other tables."""
    return declared(settings) + list(PART_KERNELS)


def _kernel(name: str, settings: Settings) -> Kernel:
    if name in PART_KERNELS:
        return PART_KERNELS[name](settings)
    return FAMILIES[name].online.kernel(settings)  # type: ignore[union-attr]


def _compile_one(name: str, settings_json: str) -> tuple[str, float, int]:
    settings = Settings.from_json(settings_json)
    t0 = time.perf_counter()
    kernel = _kernel(name, settings)
    kernel.warm()  # batch and step, with the argument types the extract and the serving engine pass
    return name, time.perf_counter() - t0, kernel.state_size


def compile_declared(settings: Settings, workers: int = 1) -> Iterator[tuple[str, float, int]]:
    """Compile (or load from the caches) every table declared as expressions, batch and online forms
    (:meth:`bqx.features.spec.Kernel.warm`), yielding (table, seconds, state slots) as each is
    ready. When the first one had to compile (a cold cache) and ``workers`` > 1, the rest compile in
    that many processes (numba's cache is shared through the disk) and this process then loads them;
    a warm cache loads in this process alone, in about a second."""
    names = generated(settings)
    if not names:
        return
    first = _compile_one(names[0], settings.to_json())
    yield first
    if workers > 1 and first[1] > COLD_SECONDS:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(_compile_one, name, settings.to_json()) for name in names[1:]]
            yield from (f.result() for f in as_completed(futures))
        for name in names[1:]:  # load what the workers compiled into this process
            _compile_one(name, settings.to_json())
        return
    for name in names[1:]:
        yield _compile_one(name, settings.to_json())


COLD_SECONDS = 2.0  # a kernel that took longer was compiled, not loaded
