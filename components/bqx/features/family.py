"""The interface every feature family implements (:class:`Family`), the pair's input series it reads
(:class:`PairInputs`), and :func:`from_spec`, which derives a whole family from declared expressions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bqx.config import Settings
from bqx.features.primary import primary_warmup
from bqx.features.spec import Expr, Kernel, compile_table
from bqx.panel import Panel


@dataclass(frozen=True)
class PairInputs:
    """The series a pair's tables are computed from (float64, one value per bar, rows after baseline).

    ``idx_open/high/low`` are the bar's prices on the rate_idx scale; ``volume``, ``bid`` and ``ask``
    are all-NaN when the source has none; ``ts_ns`` is the bar time in UTC nanoseconds; ``day_*`` key
    the trading session (or FX day) each bar belongs to.
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
    # each trading session's key (the local day of its latest start, ns; bqx.features.time_features)
    day_tokyo: np.ndarray
    day_london: np.ndarray
    day_ny: np.ndarray
    day_fx: np.ndarray  # the FX day, rolling at 17:00 New York
    pair: str
    panel: Panel  # every pair on one grid (bqx.panel); cross-pair tables are computed on it
    panel_rows: np.ndarray  # grid row of each of this pair's bars
    # a fitted HMM to filter with instead of fitting on the first hmm_fit_rows bars: a model package's
    # (online_state["hmm"]), so batch prediction computes the regime features as serving does
    hmm_fit: dict | None = None


def on_pair_rows(inp: PairInputs, block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cross-pair tables are computed on the panel grid; keep this pair's rows. A pair with a bar at
    every grid row (its rows are increasing, so as many as the grid's are all of them) keeps the block."""
    if len(inp.panel_rows) == len(inp.panel.ts_ns):
        return block
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
    # a declared cross-pair table: which market row each of its kernel's inputs reads, for a pair of a
    # panel ({input: (panel field, pair column)}, column -1 = all NaN); its state follows every grid row
    panel_inputs: Callable[[str, tuple[str, ...]], dict[str, tuple[str, int]]] | None = None

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


def from_spec(table: Callable[[Settings], Mapping[str, Expr]]) -> Family:
    """A family declared as named expressions over :class:`PairInputs` series: names, batch columns,
    warm-up (its longest lookback plus its inputs' own warm-up) and the online kernel all come from
    ``table(settings)``."""

    def kernel(s: Settings) -> Kernel:
        return compile_table(table(s))

    return Family(
        names=lambda s: list(kernel(s).names),
        compute=lambda inp, s: _batch(kernel(s), inp),
        warmup=lambda s: kernel(s).warmup(input_warmup(s)),
        online=Online((), _no_step, kernel=kernel),
    )


@dataclass(frozen=True)
class PanelBinding:
    """What a declared cross-pair table reads for one pair of a panel: each kernel input's panel field
    and pair column (-1: not in the panel, an all-NaN input), and the kernel's parameters."""

    columns: dict[str, tuple[str, int]]
    params: tuple


def from_panel_spec(kernel: Callable[[Settings], Kernel], bind: Callable[[str, tuple[str, ...]], PanelBinding]
                    ) -> Family:
    """A cross-pair family declared as named expressions over pair columns of the panel (``bind`` names
    them for each pair): the batch table runs the kernel over every grid row and keeps the pair's rows;
    the serving engine steps the same kernel over every grid row of the market (:mod:`bqx.serving.engine`)."""

    return Family(
        names=lambda s: list(kernel(s).names),
        compute=lambda inp, s: on_pair_rows(inp, panel_batch(kernel(s), bind(inp.pair, inp.panel.pairs), inp.panel)),
        warmup=lambda s: kernel(s).warmup(),
        online=Online((), _no_step, kernel=kernel, panel=True,
                      pair_params=lambda pair, pairs: bind(pair, pairs).params,
                      panel_inputs=lambda pair, pairs: bind(pair, pairs).columns),
    )


def panel_batch(kernel: Kernel, binding: PanelBinding, panel: Panel) -> dict[str, np.ndarray]:
    """A declared cross-pair table on every grid row of the panel."""
    n = len(panel.ts_ns)
    arrays = {name: getattr(panel, field)[:, col] if col >= 0 else np.full(n, np.nan)
              for name, (field, col) in binding.columns.items()}
    return kernel.batch(arrays, binding.params)


def _batch(kernel: Kernel, inp: PairInputs) -> dict[str, np.ndarray]:
    return kernel.batch({name: getattr(inp, name) for name in kernel.inputs})


def _no_step(*args: object) -> int:
    raise AssertionError("a spec family steps through its kernel (Online.runtime)")


def input_warmup(s: Settings) -> dict[str, int]:
    """Rows an input series is NaN for before its first value."""
    return {"bqx": primary_warmup(s)}
