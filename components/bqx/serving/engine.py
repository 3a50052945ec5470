"""The online feature engine of one pair: per-pair state that advances one bar at a time and yields the same
values as the batch engine (``bqx.extract``) on the same bars.

Each table has a compiled one-row kernel next to its batch function (``online_step`` in its family
module, registered as :class:`bqx.features.registry.Online`): it reads the pair's recent bars from
fixed buffers (the cross-pair tables: the shared :class:`bqx.serving.market.Market`) and carries its
recursive state (averages, rows-since counters, rings, the HMM filter, open buckets) in a float64
vector. Seeding runs the stateful kernels over the whole history once, so their state is the batch
engine's; stateless kernels only run on the rows the lag history needs. A cross-pair table with state
(the declared ones, ``Online.panel_inputs``, and the correlation tables' window sums) steps every grid
row of the market, from the first row it keeps (its windows are shorter than that), catching up on the
rows between the pair's bars; the market has it step the rows compaction is about to drop. Each new bar then costs one
kernel call per table. Every model input is read from a ring of each table's recent rows
(``..._lag60`` is the row 60 bars back). The rate_idx baseline and the HMM fit come from the model
package's ``online_state`` when it has one, else from the seeded bars exactly as extract would
compute them on those bars.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

import numpy as np
import pandas as pd

from bqx.columns import parse
from bqx.config import Settings
from bqx.extract import pair_inputs
from bqx.features import primary, time_features
from bqx.features.registry import FAMILIES
from bqx.serving.market import Market

NOT_ONLINE = frozenset(t for t, fam in FAMILIES.items() if fam.online is None)
TAIL_MARGIN = 4
COMPACT_EVERY = 4096  # buffers hold keep + this many rows before the newest keep rows move to the front
SERIES = ("ts_ns", "open", "high", "low", "close", "volume", "bid", "ask", "idx", "idx_open", "idx_high",
          "idx_low", "bqx", *time_features.DAY_KEYS)
RAW = ("open", "high", "low", "close", "volume", "bid", "ask")
ON_IDX_SCALE = (("close", "idx"), ("open", "idx_open"), ("high", "idx_high"), ("low", "idx_low"))


def tables_for(features: Iterable[str]) -> list[str]:
    return sorted({parse(f).table for f in features})


def not_online(features: Iterable[str]) -> list[str]:
    return [f for f in features if parse(f).table in NOT_ONLINE]


def tail_length(table: str, settings: Settings, snapshot: dict | None = None) -> int:
    """Rows of history a table's kernel reads (its warm-up plus a margin); shorter for a table whose
    fitted state comes from the model package's snapshot."""
    online = FAMILIES[table].online
    fitted = online.from_snapshot(snapshot) if snapshot and online and online.from_snapshot else None
    if fitted is not None and online is not None and online.snapshot_warmup is not None:
        return online.snapshot_warmup(settings) + TAIL_MARGIN
    return FAMILIES[table].warmup(settings) + TAIL_MARGIN


def market_keep(settings: Settings) -> int:
    """Grid rows a market keeps: the longest cross-pair window, plus room for a pair seeded later to
    read its lagged rows (twice the longest lag, as the pair's rows are a subset of the grid's)."""
    panel = [t for t, fam in FAMILIES.items() if fam.online is not None and fam.online.panel]
    return max(tail_length(t, settings) for t in panel) + 2 * (settings.splits.max_lag + 1)


def state_bytes(settings: Settings, n_features: int, max_lag: int) -> tuple[int, int]:
    """Upper bounds of one pair's state (every table) and of the shared market, from the same sizes
    the engine allocates: buffers of ``keep + COMPACT_EVERY`` rows, a ring of ``max_lag + 1`` rows per
    feature; the market keeps ``market_keep + COMPACT_EVERY`` grid rows."""
    from bqx.serving import market

    tables = list(FAMILIES)
    keep = max(tail_length(t, settings) for t in tables)
    pair = (len(SERIES) * (keep + COMPACT_EVERY) + (max_lag + 1) * n_features) * 8
    pair += sum(FAMILIES[t].online.runtime(settings).state_size for t in tables if FAMILIES[t].online) * 8  # type: ignore[union-attr]
    rows = market_keep(settings) + market.COMPACT_EVERY
    n_pairs = len(settings.features.pairs)
    return pair, rows * (7 * n_pairs + 3 * 8 + 2) * 8


class _Table:
    """One table's kernel, its state and a ring of its last rows (for lagged inputs)."""

    def __init__(self, key: str, settings: Settings, hist_len: int, history: dict[str, np.ndarray], pair: str,
                 market: Market | None, snapshot: dict | None) -> None:
        online = FAMILIES[key].online
        assert online is not None
        self.key, self.online, self.panel = key, online, online.panel
        self.run = online.runtime(settings)
        self.names = FAMILIES[key].names(settings)
        self.col = {name: i for i, name in enumerate(self.names)}
        fitted = online.from_snapshot(snapshot) if snapshot and online.from_snapshot else None
        if fitted is None and online.fit is not None:
            fitted = online.fit(history, settings)
        self.params = online.params(settings) + (fitted or ())
        if self.panel:
            if market is None:
                raise ValueError(f"{key} is computed from every pair's bars: the engine needs the market")
            self.params += online.pair_params(pair, market.pairs)
        if online.kernel is not None:  # a generated kernel's parameters, typed as it was compiled for them
            self.params = online.kernel(settings).coerce(self.params)
        self.pair = pair
        self.state = np.zeros(self.run.state_size)
        self.run.init(self.state)
        self.ring = np.full((hist_len, len(self.names)), np.nan)
        self.pos = 0  # ring row the next step writes
        # a cross-pair table with state (the declared ones, the correlation tables' window sums) carries it
        # over every grid row, not only the pair's bars: it steps the grid rows between the pair's bars too
        # (``catch_up``), from the market's first kept row
        self.follows = self.panel and (online.panel_inputs is not None or self.run.state_size > 0)
        self.scratch = np.empty(len(self.names))
        self.market: Market | None = None
        self.done = -1  # the last grid row stepped (counted from the market's start, across compaction)

    def bind(self, series: dict[str, np.ndarray] | Market) -> None:
        """Read from these buffers from now on (the argument tuple is built once, not per bar)."""
        if isinstance(series, Market):
            if self.online.panel_inputs is not None:  # a declared table reads the pair's columns
                where = self.online.panel_inputs(self.pair, series.pairs)
                arrays = tuple(series.pair_row(*where[k]) for k in self.run.series)
            else:
                arrays = series.arrays(self.run.series)
            if self.follows and self.market is None:
                self.market, self.done = series, series.offset - 1
                series.follow(self)
        else:
            arrays = tuple(series[k] for k in self.run.series)
        self.args = (*arrays, *self.params, self.state)

    def catch_up(self, k: int) -> None:
        """Step the market's grid rows after the last one stepped, up to buffer row ``k`` (their values
        are not kept: the pair has no bar there)."""
        assert self.market is not None
        first = self.done + 1 - self.market.offset
        if first < 0:  # the market compacted rows this table had not stepped (it steps them first: a bug)
            raise RuntimeError(f"{self.key} of {self.pair}: market rows from grid row {self.done + 1} were dropped "
                               "before this table stepped them")
        for row in range(first, k + 1):
            self.run.step(row, *self.args, self.scratch)
        self.done = max(self.done, self.market.offset + k)

    def step(self, t: int, warm: bool = False) -> None:
        if self.follows:
            assert self.market is not None
            if self.market.offset + t <= self.done:
                raise ValueError(f"{self.key}: grid row {self.market.offset + t} was stepped already")
            self.catch_up(t - 1)
            self.done = self.market.offset + t
        fn = self.run.warm if warm else self.run.step
        used = fn(t, *self.args, self.ring[self.pos])
        if used > len(self.state):  # a kernel that outgrew its state would corrupt memory: stop at once
            raise RuntimeError(f"{self.key}: online kernel used {used} state slots, {len(self.state)} allocated")
        self.pos = (self.pos + 1) % len(self.ring)


class PairEngine:
    """One pair's online state for a set of tables."""

    def __init__(self, pair: str, bars: pd.DataFrame, tables: list[str], settings: Settings, max_lag: int,
                 market: Market | None = None, snapshot: dict | None = None) -> None:
        """``snapshot``: the model package's ``online_state`` (rate_idx baseline close, HMM fit); without
        it both come from ``bars``, as the batch engine would compute them on those bars alone."""
        unknown = [t for t in tables if t not in FAMILIES]
        if unknown:
            raise ValueError(f"no feature family computes table(s) {unknown}")
        refused = [t for t in tables if t in NOT_ONLINE]
        if refused:
            raise ValueError(f"table(s) {refused} are not computed online yet")
        self.pair, self.settings, self.tables = pair, settings, list(tables)
        self.target, self.v1 = settings.features.target_window, settings.features.bqx_version == "v1"
        self.keep = max([*(tail_length(t, settings, snapshot) for t in tables), self.target + 2])
        self.hist_len = max_lag + 1
        base = float(snapshot["baseline_close"]) if snapshot and "baseline_close" in snapshot else None
        _, inp = pair_inputs(bars, settings, pair, base_close=base)
        self.base_close = float(inp.close[0])
        full = {k: np.asarray(getattr(inp, k), dtype=np.int64 if k == "ts_ns" else np.float64) for k in SERIES}
        n = len(full["ts_ns"])
        self.market = market
        self._tables = [_Table(t, settings, self.hist_len, full, pair, market, snapshot) for t in tables]
        kept = max(0, n - self.hist_len)
        for table in self._tables:
            if table.panel:  # on the market grid, the kept rows (a declared table catches up from the market's first)
                assert market is not None
                table.bind(market)
                for t in range(kept, n):
                    table.step(market.row_of(int(full["ts_ns"][t])))
                continue
            table.bind(full)
            if len(table.state):  # stateful: the whole history once; rows not kept only advance the state
                for t in range(kept):
                    table.step(t, warm=True)
            for t in range(kept, n):
                table.step(t)
        self.columns = {f"{table.key}.{name}": (table, col)
                        for table in self._tables for name, col in table.col.items()}
        cap = self.keep + COMPACT_EVERY
        self.series = {k: np.zeros(cap, dtype=v.dtype) for k, v in full.items()}
        self.n = min(n, self.keep)
        for k, v in full.items():
            self.series[k][: self.n] = v[n - self.n:]
        for table in self._tables:
            if not table.panel:
                table.bind(self.series)
        self.last_ts = int(self.series["ts_ns"][self.n - 1])
        self.update_seconds: deque[float] = deque(maxlen=100_000)
        # model inputs -> per table: (table, positions in the row, ring columns, lags)
        self._plans: dict[tuple[str, ...], list[tuple[_Table, np.ndarray, np.ndarray, np.ndarray]]] = {}

    @property
    def nbytes(self) -> int:
        """Bytes of the pair's buffers, rings and state (the market is shared and counted apart)."""
        return sum(v.nbytes for v in self.series.values()) + sum(t.ring.nbytes + t.state.nbytes for t in self._tables)

    @property
    def history(self) -> dict[str, np.ndarray]:
        """Each base feature's kept rows, oldest first (the last is the latest bar)."""
        out = {}
        for table in self._tables:
            order = np.roll(np.arange(len(table.ring)), -table.pos)
            for name, col in table.col.items():
                out[f"{table.key}.{name}"] = table.ring[order, col]
        return out

    def update(self, bar: dict[str, float], ts_ns: int) -> None:
        """Advance by one bar (already validated and later than every bar seen)."""
        t0 = time.perf_counter()
        s = self.series
        if self.n == len(s["ts_ns"]):  # full: keep the newest rows, in place (the kernels hold no views)
            for v in s.values():
                v[: self.keep] = v[self.n - self.keep: self.n]
            self.n = self.keep
        t = self.n
        s["ts_ns"][t] = ts_ns
        for k in RAW:
            s[k][t] = bar.get(k, np.nan)
        scale = 100.0 / self.base_close
        for src, dst in ON_IDX_SCALE:
            s[dst][t] = bar[src] * scale
        s["bqx"][t] = primary.bqx_point(s["idx"], t, self.target, self.v1)
        keys = time_features.CALENDAR.row(ts_ns)[-len(time_features.DAY_KEYS):]
        for j, name in enumerate(time_features.DAY_KEYS):
            s[name][t] = keys[j]
        self.n += 1
        k = self.market.row_of(ts_ns) if self.market is not None else -1
        for table in self._tables:
            table.step(k if table.panel else t)
        self.last_ts = ts_ns
        self.update_seconds.append(time.perf_counter() - t0)

    def row(self, features: list[str]) -> np.ndarray:
        """The model's inputs at the latest bar, in the model's order: one gather per table."""
        plan = self._plans.get(tuple(features))
        if plan is None:
            where = [(*self.columns[parse(f).base], parse(f).lag) for f in features]
            plan = []
            for table in self._tables:
                mine = [i for i, (t, _, _) in enumerate(where) if t is table]
                if mine:
                    plan.append((table, np.array(mine), np.array([where[i][1] for i in mine]),
                                 np.array([where[i][2] for i in mine])))
            self._plans[tuple(features)] = plan
        out = np.empty(len(features))
        for table, positions, cols, lags in plan:
            out[positions] = table.ring[(table.pos - 1 - lags) % len(table.ring), cols]
        return out
