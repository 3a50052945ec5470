"""Which family function computes which catalog table, with its feature names and warm-up rows.

A table listed in :data:`bqx.catalog.TABLES` but not here is declared (name, domain, count) and not
yet computed; ``bqx plan`` shows which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bqx.config import Settings, interval_s
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
from bqx.features.spec import Expr, Kernel, compile_table
from bqx.panel import Panel


@dataclass(frozen=True)
class PairInputs:
    """The series a pair's tables are computed from (float64, one value per bar, rows after baseline).

    ``idx_open/high/low`` are the bar's prices on the rate_idx scale; ``volume``, ``bid`` and ``ask``
    are all-NaN when the source has none; ``ts_ns`` is the bar time in UTC nanoseconds.
    """

    ts_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    idx: np.ndarray  # rate_idx (of the close)
    idx_open: np.ndarray
    idx_high: np.ndarray
    idx_low: np.ndarray
    bqx: np.ndarray  # primary BQX series (NaN during its warm-up)
    pair: str
    panel: Panel  # every pair on one grid (bqx.panel); cross-pair tables are computed on it
    panel_rows: np.ndarray  # grid row of each of this pair's bars


def _on_pair_rows(inp: PairInputs, block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cross-pair tables are computed on the panel grid; keep this pair's rows."""
    return {name: values[inp.panel_rows] for name, values in block.items()}


@dataclass(frozen=True)
class Online:
    """A table computed one row at a time by the serving engine (:mod:`bqx.serving.engine`).

    ``step(t, *series, *params(settings), state, out)`` writes row t of every feature, in the
    table's name order, into ``out`` from the named :class:`PairInputs` series up to row t and the
    carried ``state`` (``state_size(settings)`` float64 slots, ``init`` fills them before row 0),
    and returns the number of state slots it used. Stateless steps only read a trailing window, so
    seeding runs them on the last rows alone; stateful ones run over the whole history once, with
    ``warm`` (same signature; only the state must be right) on rows whose outputs are not kept.
    ``fit`` derives parameters from the seed history itself (the HMM fit), as the batch function does.
    """

    series: tuple[str, ...]
    step: Callable[..., int]
    params: Callable[[Settings], tuple] = lambda s: ()
    state_size: Callable[[Settings], int] = lambda s: 0
    init: Callable[[np.ndarray], None] = lambda state: None
    warm: Callable[..., int] | None = None  # default: step
    fit: Callable[[dict[str, np.ndarray], Settings], tuple] | None = None  # data-fitted params, after params
    # cross-pair tables: ``t`` is a market grid row, ``series`` name market columns (bqx.serving.market),
    # and ``pair_params(pair, panel pairs)`` follow ``params``
    panel: bool = False
    pair_params: Callable[[str, tuple[str, ...]], tuple] = lambda pair, pairs: ()
    # a model package's ``online_state`` (fitted at extract) replaces ``fit``, and the warm-up shrinks
    from_snapshot: Callable[[dict], tuple | None] | None = None
    snapshot_warmup: Callable[[Settings], int] | None = None
    # a table declared as expressions (bqx.features.spec): series, step, state and init come from its kernel
    kernel: Callable[[Settings], Kernel] | None = None

    def runtime(self, settings: Settings) -> Runtime:
        """What the serving engine calls for these settings."""
        if self.kernel is not None:
            k = self.kernel(settings)
            return Runtime(k.inputs, k.step, k.step, k.state_size, k.init)
        return Runtime(self.series, self.step, self.warm or self.step, self.state_size(settings), self.init)


@dataclass(frozen=True)
class Runtime:
    series: tuple[str, ...]
    step: Callable[..., int]
    warm: Callable[..., int]
    state_size: int
    init: Callable[[np.ndarray], None]


@dataclass(frozen=True)
class Family:
    names: Callable[[Settings], list[str]]
    compute: Callable[[PairInputs, Settings], dict[str, np.ndarray]]
    warmup: Callable[[Settings], int]
    online: Online | None = None


def from_spec(table: Callable[[Settings], Mapping[str, Expr]],
              input_warmup: Callable[[Settings], dict[str, int]] = lambda s: {}) -> Family:
    """A family declared as named expressions over :class:`PairInputs` series: names, batch columns,
    warm-up and the online kernel all come from ``table(settings)``; ``input_warmup`` gives the rows
    an input series itself needs (BQX's own warm-up)."""

    def kernel(s: Settings) -> Kernel:
        return compile_table(table(s))

    return Family(
        names=lambda s: list(kernel(s).names),
        compute=lambda inp, s: kernel(s).batch({name: getattr(inp, name) for name in kernel(s).inputs}),
        warmup=lambda s: kernel(s).warmup(input_warmup(s)),
        online=Online((), _no_step, kernel=kernel),
    )


def _no_step(*args: object) -> int:
    raise AssertionError("a spec family steps through its kernel (Online.runtime)")


def _bqx_warmup(s: Settings) -> dict[str, int]:
    return {"bqx": bqx_core.primary_warmup(s)}


FAMILIES: dict[str, Family] = {
    "bqx": Family(bqx_core.names, lambda inp, s: bqx_core.compute(inp.idx, s), bqx_core.warmup,
                  Online(("idx",), bqx_core.online_step, bqx_core.online_params)),
    "reg_idx": Family(
        lambda s: reg.names(s.features.reg_windows),
        lambda inp, s: reg.compute(inp.idx, s.features.reg_windows),
        lambda s: reg.warmup(s.features.reg_windows),
        Online(("idx",), reg.online_step, lambda s: reg.online_params(s.features.reg_windows)),
    ),
    "reg_bqx": Family(
        lambda s: reg.names(s.features.reg_windows),
        lambda inp, s: reg.compute(inp.bqx, s.features.reg_windows),
        lambda s: bqx_core.primary_warmup(s) + reg.warmup(s.features.reg_windows),
        Online(("bqx",), reg.online_step, lambda s: reg.online_params(s.features.reg_windows)),
    ),
    "technical_idx": from_spec(lambda s: technical.IDX),
    "technical_bqx": from_spec(lambda s: technical.BQX, _bqx_warmup),
    "moving_avg_idx": Family(lambda s: moving_avg.names(), lambda inp, s: moving_avg.compute(inp.idx),
                             lambda s: moving_avg.WARMUP,
                             Online(("idx",), moving_avg.online_step, state_size=lambda s: moving_avg.ONLINE_STATE)),
    "bollinger_bqx": Family(lambda s: bollinger.names(), lambda inp, s: bollinger.compute(inp.bqx),
                            lambda s: bqx_core.primary_warmup(s) + max(bollinger.WINDOWS),
                            Online(("bqx",), bollinger.online_step)),
    "statistics_bqx": Family(lambda s: statistics.names(), lambda inp, s: statistics.compute(inp.bqx),
                             lambda s: bqx_core.primary_warmup(s) + max(statistics.WINDOWS),
                             Online(("bqx",), statistics.online_step)),
    "fibonacci_bqx": Family(lambda s: fibonacci.names(), lambda inp, s: fibonacci.compute(inp.bqx),
                            lambda s: bqx_core.primary_warmup(s) + max(fibonacci.WINDOWS),
                            Online(("bqx",), fibonacci.online_step)),
    "realized_vol": Family(lambda s: realized_vol.names(),
                           lambda inp, s: realized_vol.compute(inp.open, inp.high, inp.low, inp.close),
                           lambda s: realized_vol.SPAN,
                           Online(("open", "high", "low", "close"), realized_vol.online_step)),
    "time_features": Family(lambda s: time_features.names(),
                            lambda inp, s: time_features.compute(inp.ts_ns, interval_s(s)),
                            lambda s: 1, Online(("ts_ns",), time_features.online_step,
                                                lambda s: (float(interval_s(s)) * 1e9,))),
    "spread_features": Family(lambda s: spread.names(),
                              lambda inp, s: spread.compute(inp.high, inp.low, inp.close, inp.bid, inp.ask),
                              lambda s: spread.WINDOW,
                              Online(("high", "low", "close", "bid", "ask"), spread.online_step)),
    "volume_features": Family(lambda s: volume.names(),
                              lambda inp, s: volume.compute(inp.high, inp.low, inp.close, inp.volume),
                              lambda s: volume.SPAN,
                              Online(("high", "low", "close", "volume"), volume.online_step,
                                     state_size=lambda s: volume.ONLINE_STATE)),
    "multi_resolution_idx": Family(lambda s: multi_resolution.names(),
                                   lambda inp, s: multi_resolution.compute(inp.idx, inp.idx_high, inp.idx_low),
                                   lambda s: max(multi_resolution.HORIZONS),
                                   Online(("idx", "idx_high", "idx_low"), multi_resolution.online_step)),
    "dual_domain": Family(lambda s: dual_domain.names(), lambda inp, s: dual_domain.compute(inp.idx, inp.bqx),
                          lambda s: bqx_core.primary_warmup(s) + dual_domain.SPAN,
                          Online(("idx", "bqx"), dual_domain.online_step)),
    "event_regime": Family(lambda s: event_regime.names(),
                           lambda inp, s: event_regime.compute(inp.ts_ns, inp.open, inp.high, inp.low, inp.close,
                                                               interval_s(s)),
                           lambda s: event_regime.LONGEST + 1,
                           Online(("ts_ns", "open", "high", "low", "close"), event_regime.online_step,
                                  lambda s: event_regime.gap_thresholds(interval_s(s)),
                                  state_size=lambda s: event_regime.ONLINE_STATE, init=event_regime.online_init)),
    "spectral_features": Family(lambda s: spectral.names(), lambda inp, s: spectral.compute(inp.idx, inp.bqx),
                                lambda s: bqx_core.primary_warmup(s) + spectral.warmup(),
                                Online(("idx", "bqx"), spectral.online_step, state_size=lambda s: spectral.ONLINE_STATE,
                                       init=spectral.online_init, warm=spectral.online_warm)),
    "hmm_regime": Family(lambda s: hmm_regime.names(),
                         lambda inp, s: hmm_regime.compute(inp.idx, s.features.hmm_fit_rows),
                         lambda s: hmm_regime.warmup(s.features.hmm_fit_rows),
                         Online(("idx",), hmm_regime.online_step, state_size=lambda s: hmm_regime.ONLINE_STATE,
                                init=hmm_regime.online_init,
                                fit=lambda series, s: hmm_regime.online_fit(series, s.features.hmm_fit_rows),
                                from_snapshot=hmm_regime.from_snapshot,
                                snapshot_warmup=lambda s: hmm_regime.warmup(hmm_regime.SNAPSHOT_SETTLE))),
    "multi_scale": Family(lambda s: multi_scale.names(),
                          lambda inp, s: multi_scale.compute(inp.ts_ns, inp.idx_open, inp.idx_high, inp.idx_low,
                                                             inp.idx, inp.volume),
                          lambda s: multi_scale.warmup(),
                          Online(("ts_ns", "idx_open", "idx_high", "idx_low", "idx", "volume"), multi_scale.online_step,
                                 state_size=lambda s: multi_scale.ONLINE_STATE, init=multi_scale.online_init)),
    "correlation_idx": Family(lambda s: correlation.names(),
                              lambda inp, s: _on_pair_rows(inp, correlation.compute(inp.panel, inp.pair, "idx")),
                              lambda s: max(correlation.WINDOWS) + 1,
                              Online(("r", "g"), correlation.online_step, panel=True,
                                     pair_params=correlation.online_params)),
    "correlation_bqx": Family(lambda s: correlation.names(),
                              lambda inp, s: _on_pair_rows(inp, correlation.compute(inp.panel, inp.pair, "bqx")),
                              lambda s: bqx_core.primary_warmup(s) + max(correlation.WINDOWS) + 1,
                              Online(("dbqx", "gb"), correlation.online_step, panel=True,
                                     pair_params=correlation.online_params)),
    "cross_sectional_panel": Family(lambda s: cross_sectional.names(),
                                    lambda inp, s: _on_pair_rows(inp, cross_sectional.compute(inp.panel)),
                                    lambda s: 241,
                                    Online(("r", "g", "logp"), cross_sectional.online_step, panel=True,
                                           pair_params=cross_sectional.online_params)),
    "cross_pair": Family(lambda s: cross_pair.names(),
                         lambda inp, s: _on_pair_rows(inp, cross_pair.compute(inp.panel, inp.pair)),
                         lambda s: max(cross_pair.WINDOWS) + 1,
                         Online(("r", "g"), cross_pair.online_step, panel=True, pair_params=cross_pair.online_params)),
    "error_correction": Family(lambda s: error_correction.names(),
                               lambda inp, s: _on_pair_rows(inp, error_correction.compute(inp.panel, inp.pair)),
                               lambda s: max(error_correction.WINDOWS) + 1,
                               Online(("logp",), error_correction.online_step, panel=True,
                                      pair_params=error_correction.online_params)),
    "parabolic": Family(lambda s: parabolic.names(s.features.reg_windows),
                        lambda inp, s: parabolic.compute(inp.idx, inp.bqx, s.features.reg_windows),
                        lambda s: bqx_core.primary_warmup(s) + reg.warmup(s.features.reg_windows),
                        Online(("idx", "bqx"), parabolic.online_step,
                               lambda s: reg.online_params(s.features.reg_windows))),
}
