"""The online feature engine: per-pair state that advances one bar at a time and yields the same
values as the batch engine (``bqx.extract``) on the same bars.

Each per-pair table has a compiled one-row kernel next to its batch function (``online_step`` in
its family module, registered as :class:`bqx.features.registry.Online`): it reads the pair's recent
bars from fixed buffers and carries its recursive state (averages, rows-since counters, rings) in a
float64 vector. Seeding runs the stateful kernels over the whole history once, so their state is the
batch engine's; stateless kernels only run on the rows the lag history needs. Each new bar then
costs one kernel call per table. Every model input is read from a ring of each table's recent rows
(``..._lag60`` is the row 60 bars back). The rate_idx baseline is the first seeded bar at or after
the settings' baseline date, exactly as in extract.

Tables computed from the cross-pair panel, ``hmm_regime`` and ``multi_scale`` have no kernel yet:
a model that selected one of their features is served from feature rows, and a raw-bars request
for it is refused naming those features.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Iterable

import numpy as np
import pandas as pd

from bqx.bars import BarValidationError, validate_bars
from bqx.config import Settings
from bqx.extract import pair_inputs
from bqx.features import bqx_core
from bqx.features.registry import FAMILIES
from bqx.lagging import lag_of
from bqx.serving.payload import PayloadError

NOT_ONLINE = frozenset(t for t, fam in FAMILIES.items() if fam.online is None)
TAIL_MARGIN = 4
COMPACT_EVERY = 4096  # buffers hold keep + this many rows before the newest keep rows move to the front
SERIES = ("ts_ns", "open", "high", "low", "close", "volume", "bid", "ask", "idx", "idx_open", "idx_high",
          "idx_low", "bqx")
RAW = ("open", "high", "low", "close", "volume", "bid", "ask")
ON_IDX_SCALE = (("close", "idx"), ("open", "idx_open"), ("high", "idx_high"), ("low", "idx_low"))


def split_feature(name: str) -> tuple[str, str, int]:
    """``technical_idx.rsi_14_lag60`` -> (table, base feature name, lag)."""
    lag = lag_of(name)
    base = name[: -len(f"_lag{lag}")] if lag else name
    return base.split(".", 1)[0], base, lag


def tables_for(features: Iterable[str]) -> list[str]:
    return sorted({split_feature(f)[0] for f in features})


def not_online(features: Iterable[str]) -> list[str]:
    return [f for f in features if split_feature(f)[0] in NOT_ONLINE]


def tail_length(table: str, settings: Settings) -> int:
    """Rows of history a table's kernel reads (its warm-up plus a margin)."""
    return FAMILIES[table].warmup(settings) + TAIL_MARGIN


class _Table:
    """One table's kernel, its state and a ring of its last rows (for lagged inputs)."""

    def __init__(self, key: str, settings: Settings, hist_len: int, history: dict[str, np.ndarray]) -> None:
        online = FAMILIES[key].online
        assert online is not None
        self.key, self.online = key, online
        self.names = FAMILIES[key].names(settings)
        self.col = {name: i for i, name in enumerate(self.names)}
        self.params = online.params(settings) + (online.fit(history, settings) if online.fit else ())
        self.state = np.zeros(online.state_size(settings))
        online.init(self.state)
        self.ring = np.full((hist_len, len(self.names)), np.nan)
        self.pos = 0  # ring row the next step writes

    def bind(self, series: dict[str, np.ndarray]) -> None:
        """Read from these buffers from now on (the argument tuple is built once, not per bar)."""
        self.args = (*(series[k] for k in self.online.series), *self.params, self.state)

    def step(self, t: int, warm: bool = False) -> None:
        fn = (self.online.warm or self.online.step) if warm else self.online.step
        used = fn(t, *self.args, self.ring[self.pos])
        if used > len(self.state):  # a kernel that outgrew its state would corrupt memory: stop at once
            raise RuntimeError(f"{self.key}: online kernel used {used} state slots, {len(self.state)} allocated")
        self.pos = (self.pos + 1) % len(self.ring)

    def value(self, col: int, lag: int) -> float:
        return float(self.ring[(self.pos - 1 - lag) % len(self.ring), col])


class PairEngine:
    """One pair's online state for a set of tables."""

    def __init__(self, pair: str, bars: pd.DataFrame, tables: list[str], settings: Settings, max_lag: int) -> None:
        unknown = [t for t in tables if t not in FAMILIES]
        if unknown:
            raise ValueError(f"no feature family computes table(s) {unknown}")
        refused = [t for t in tables if t in NOT_ONLINE]
        if refused:
            raise ValueError(f"table(s) {refused} are not computed online yet")
        self.pair, self.settings, self.tables = pair, settings, list(tables)
        self.target, self.v1 = settings.target_window, settings.bqx_version == "v1"
        self.keep = max([*(tail_length(t, settings) for t in tables), self.target + 2])
        self.hist_len = max_lag + 1
        _, inp = pair_inputs(bars, settings, pair)
        self.base_close = float(inp.close[0])
        full = {k: np.asarray(getattr(inp, k), dtype=np.int64 if k == "ts_ns" else np.float64) for k in SERIES}
        n = len(full["ts_ns"])
        self._tables = [_Table(t, settings, self.hist_len, full) for t in tables]
        for table in self._tables:
            table.bind(full)
            kept = max(0, n - self.hist_len)
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
            table.bind(self.series)
        self.last_ts = int(self.series["ts_ns"][self.n - 1])
        self.update_seconds: deque[float] = deque(maxlen=100_000)

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
        s["bqx"][t] = bqx_core.bqx_point(s["idx"], t, self.target, self.v1)
        self.n += 1
        for table in self._tables:
            table.step(t)
        self.last_ts = ts_ns
        self.update_seconds.append(time.perf_counter() - t0)

    def row(self, features: list[str]) -> np.ndarray:
        """The model's inputs at the latest bar, in the model's order."""
        out = np.empty(len(features))
        for i, f in enumerate(features):
            _, base, lag = split_feature(f)
            table, col = self.columns[base]
            out[i] = table.value(col, lag)
        return out


def parse_bars(raw: object, pair: str) -> pd.DataFrame:
    """The request's bars as a validated frame; 400 naming the row and field of the first problem."""
    if not isinstance(raw, list) or not raw or not all(isinstance(b, dict) for b in raw):
        raise PayloadError(400, "'bars' must be a non-empty list of objects {ts_utc, open, high, low, close[, volume]}")
    try:
        return validate_bars(pd.DataFrame(raw), "request", pair)
    except BarValidationError as exc:
        raise PayloadError(400, f"bars: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(400, f"bars: {exc}") from None


class OnlineRegistry:
    """Per-pair engines shared by the server's threads; one lock per pair keeps bar order."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.engines: dict[tuple[str, tuple[str, ...]], PairEngine] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def features_for(self, model: object, raw_bars: object) -> tuple[np.ndarray, list[pd.Timestamp]]:
        features: list[str] = model.features  # type: ignore[attr-defined]
        pair: str = model.pair  # type: ignore[attr-defined]
        refused = not_online(features)
        if refused:
            raise PayloadError(422, f"model {model.name!r} uses {len(refused)} feature(s) not computed online yet "  # type: ignore[attr-defined]
                                    f"(cross-pair panel, hmm_regime, multi_scale), e.g. {', '.join(refused[:5])}: "
                                    "send feature rows instead")
        bars = parse_bars(raw_bars, pair)
        key = (pair, tuple(tables_for(features)))
        with self._lock:
            lock = self._locks.setdefault(pair, threading.Lock())
        with lock:
            engine = self.engines.get(key)
            if engine is None:
                settings = self.settings or Settings.from_dict(_model_settings(model))
                max_lag = max(lag_of(f) for f in features)
                # every table past its warm-up at the oldest lagged row a model input reads
                need = max(tail_length(t, settings) for t in key[1]) + max_lag + 1
                if len(bars) < need:
                    raise PayloadError(400, f"pair {pair}: the online state starts from history; send at least "
                                            f"{need} bars in the first request (got {len(bars)})")
                engine = PairEngine(pair, bars, list(key[1]), settings, max_lag)
                unknown = [f for f in features if split_feature(f)[1] not in engine.columns]
                if unknown:
                    raise PayloadError(422, f"model {model.name!r}: {len(unknown)} feature(s) are not in the "  # type: ignore[attr-defined]
                                            f"feature catalog, e.g. {', '.join(unknown[:5])}: send feature rows")
                self.engines[key] = engine
            else:
                ts = pd.DatetimeIndex(bars["ts_utc"]).asi8
                for i in np.flatnonzero(ts > engine.last_ts):
                    engine.update({k: float(bars[k].iloc[i]) for k in bars.columns if k != "ts_utc"}, int(ts[i]))
            return engine.row(features)[None, :], [pd.Timestamp(engine.last_ts, tz="UTC")]


def _model_settings(model: object) -> dict:
    data = dict(model.loaded.selection.get("settings") or {})  # type: ignore[attr-defined]
    known = {f.name for f in dataclasses.fields(Settings)}
    return {k: v for k, v in data.items() if k in known}
