"""The market the cross-pair tables are computed on, advanced one grid time at a time.

The same columns as :func:`bqx.panel.build_panel` (carried-forward log closes, one-row returns in bps,
one-row changes of each pair's primary BQX series, currency strengths), kept in fixed buffers that
compact in place. Seeding builds the panel from history with the batch function; each later grid
time (a minute at which any pair has a bar) appends one row: pairs without a bar at that minute carry
their last close, exactly as the batch grid does.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from bqx.config import Settings
from bqx.features import primary
from bqx.pairs import CURRENCIES, PAIRS
from bqx.panel import filled_closes, grid_bqx, panel_from, strength_matrix

if TYPE_CHECKING:
    from bqx.serving.request_bars import RequestBars

COMPACT_EVERY = 4096
ROWS = ("logp", "r", "g")  # fields also kept per column, contiguous (``Market.pair_row``)


class MarketGapError(ValueError):
    """A requested grid time is older than the rows the market still keeps."""


class Follower(Protocol):
    """State that must see every grid row (a declared cross-pair table's kernel)."""

    def catch_up(self, k: int) -> None:
        """Step every grid row up to buffer row ``k`` not stepped yet."""


class Market:
    """Every pair of a panel on one grid; ``keep`` rows stay available behind the newest one."""

    def __init__(self, bars: dict[str, pd.DataFrame], settings: Settings, keep: int) -> None:
        self.pairs = tuple(p for p in PAIRS if p in bars)
        self.keep = keep
        self.target, self.v1 = settings.features.target_window, settings.features.bqx_version == "v1"
        grid, filled = filled_closes(bars, self.pairs)
        bqx = np.column_stack([grid_bqx(filled[:, j], settings) for j in range(len(self.pairs))])
        panel = panel_from(grid, self.pairs, filled, bqx)
        n, n_pairs = len(grid), len(self.pairs)
        proj, covered = strength_matrix(self.pairs)
        self.proj, self.covered = np.where(covered[:, None], proj, 0.0), covered
        cap = keep + COMPACT_EVERY
        lo = max(0, n - keep)  # only the newest ``keep`` rows are ever read
        self.ts = np.zeros(cap, dtype=np.int64)
        self.logp, self.r, self.dbqx = (np.full((cap, n_pairs), np.nan) for _ in range(3))
        self.g, self.gb = (np.full((cap, len(CURRENCIES)), np.nan) for _ in range(2))
        self.idx, self.bqx = (np.full((n_pairs, cap), np.nan) for _ in range(2))  # per pair, contiguous rows
        # per pair (per currency for g), contiguous: the inputs of declared cross-pair kernels
        self.logp_rows, self.r_rows = (np.full((n_pairs, cap), np.nan) for _ in range(2))
        self.g_rows = np.full((len(CURRENCIES), cap), np.nan)
        self.nan_row = np.full(cap, np.nan)  # the input of a pair the panel lacks
        self.offset = 0  # grid rows dropped by compaction: buffer row k is grid row offset + k
        self._followers: weakref.WeakSet = weakref.WeakSet()
        self.n = n - lo
        self.ts[: self.n] = grid[lo:]
        for name in ("logp", "r", "dbqx", "g", "gb"):
            getattr(self, name)[: self.n] = getattr(panel, name)[lo:]
        self.close = filled[-1].copy()
        self.base = filled[np.argmax(np.isfinite(filled), axis=0), np.arange(n_pairs)]  # each pair's first close
        self.idx[:, : self.n] = primary.rate_idx(filled[lo:], self.base).T
        for name in ROWS:
            getattr(self, f"{name}_rows")[:, : self.n] = getattr(panel, name)[lo:].T
        self.bqx[:, : self.n] = bqx[lo:].T

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, k).nbytes for k in ("ts", "logp", "r", "dbqx", "g", "gb", "idx", "bqx", "nan_row",
                                                    *(f"{name}_rows" for name in ROWS)))

    @property
    def last_ts(self) -> int:
        return int(self.ts[self.n - 1])

    def arrays(self, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, k) for k in names)

    def pair_row(self, field: str, col: int) -> np.ndarray:
        """One column's buffer of a field in :data:`ROWS`, contiguous; all NaN for column -1."""
        return self.nan_row if col < 0 else getattr(self, f"{field}_rows")[col]

    def follow(self, follower: Follower) -> None:
        """Have ``follower`` step the rows compaction is about to drop (held weakly: a dropped model's
        tables stop following)."""
        self._followers.add(follower)

    def _compact(self) -> None:
        lo = self.n - self.keep
        for f in list(self._followers):  # rows before lo are gone after this: followers step them first
            f.catch_up(lo - 1)
        for name in ("ts", "logp", "r", "dbqx", "g", "gb"):
            buf = getattr(self, name)
            buf[: self.keep] = buf[lo: self.n]
        for buf in (self.idx, self.bqx, *(getattr(self, f"{name}_rows") for name in ROWS)):
            buf[:, : self.keep] = buf[:, lo: self.n]
        self.offset += lo
        self.n = self.keep

    def advance(self, ts_ns: int, closes: dict[str, float]) -> None:
        """Append the grid row at ``ts_ns`` (later than every row), given the pairs that have a bar then."""
        if self.n == len(self.ts):
            self._compact()
        k = self.n
        for j, p in enumerate(self.pairs):
            if p in closes:
                self.close[j] = closes[p]
                if np.isnan(self.base[j]):
                    self.base[j] = closes[p]
        self.ts[k] = ts_ns
        self.logp[k] = np.log(self.close)
        self.r[k] = (self.logp[k] - self.logp[k - 1]) * 1e4
        self.idx[:, k] = self.close / self.base * 100.0
        for j in range(len(self.pairs)):
            self.bqx[j, k] = primary.bqx_point(self.idx[j], k, self.target, self.v1)
        self.dbqx[k] = self.bqx[:, k] - self.bqx[:, k - 1]
        self.g[k] = self.proj @ self.r[k]
        self.gb[k] = self.proj @ self.dbqx[k]
        self.g[k, ~self.covered] = np.nan
        self.gb[k, ~self.covered] = np.nan
        for name in ROWS:
            getattr(self, f"{name}_rows")[:, k] = getattr(self, name)[k]
        self.n = k + 1

    def advance_bars(self, bars: dict[str, pd.DataFrame] | dict[str, RequestBars]) -> int:
        """Append every grid time in ``bars`` later than the newest row; returns how many."""
        times: dict[int, dict[str, float]] = {}
        for p, frame in bars.items():
            if p not in self.pairs:
                continue
            if isinstance(frame, pd.DataFrame):
                ts, closes = pd.DatetimeIndex(frame["ts_utc"]).asi8, frame["close"].to_numpy(dtype=np.float64)
            else:
                ts, closes = frame.ns, frame.values["close"]
            for i in np.flatnonzero(ts > self.last_ts):
                times.setdefault(int(ts[i]), {})[p] = float(closes[i])
        for t in sorted(times):
            self.advance(t, times[t])
        return len(times)

    def row_of(self, ts_ns: int) -> int:
        """The buffer row of a grid time."""
        k = int(np.searchsorted(self.ts[: self.n], ts_ns))
        if k >= self.n or self.ts[k] != ts_ns:
            if self.n and ts_ns < self.ts[0]:
                raise MarketGapError(f"bar time {pd.Timestamp(ts_ns, tz='UTC')} is older than the market keeps "
                                     f"(from {pd.Timestamp(int(self.ts[0]), tz='UTC')})")
            raise ValueError(f"bar time {pd.Timestamp(ts_ns, tz='UTC')} is not on the market grid")
        return k
