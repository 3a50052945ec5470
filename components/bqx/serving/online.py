"""The online feature engine: per-pair state that advances one bar at a time and yields the same
values as the batch engine (``bqx.extract``) on the same bars.

Each table has a compiled one-row kernel next to its batch function (``online_step`` in its family
module, registered as :class:`bqx.features.registry.Online`): it reads the pair's recent bars from
fixed buffers (the cross-pair tables: the shared :class:`bqx.serving.market.Market`) and carries its
recursive state (averages, rows-since counters, rings, the HMM filter, open buckets) in a float64
vector. Seeding runs the stateful kernels over the whole history once, so their state is the batch
engine's; stateless kernels only run on the rows the lag history needs. Each new bar then costs one
kernel call per table. Every model input is read from a ring of each table's recent rows
(``..._lag60`` is the row 60 bars back). The rate_idx baseline and the HMM fit come from the model
package's ``online_state`` when it has one, else from the seeded bars exactly as extract would
compute them on those bars.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from bqx.bars import OPTIONAL_COLUMNS, PRICE_COLUMNS, BarValidationError, check_many, check_rows, validate_bars
from bqx.config import Settings
from bqx.extract import pair_inputs
from bqx.features import bqx_core
from bqx.features.registry import FAMILIES
from bqx.lagging import lag_of
from bqx.pairs import PAIRS
from bqx.serving.market import Market, MarketGapError
from bqx.serving.payload import PayloadError, WarmingUp

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
    pair += sum(FAMILIES[t].online.state_size(settings) for t in tables if FAMILIES[t].online) * 8  # type: ignore[union-attr]
    rows = market_keep(settings) + market.COMPACT_EVERY
    n_pairs = len(settings.features.pairs)
    return pair, rows * (5 * n_pairs + 2 * 8 + 1) * 8


class _Table:
    """One table's kernel, its state and a ring of its last rows (for lagged inputs)."""

    def __init__(self, key: str, settings: Settings, hist_len: int, history: dict[str, np.ndarray], pair: str,
                 market: Market | None, snapshot: dict | None) -> None:
        online = FAMILIES[key].online
        assert online is not None
        self.key, self.online, self.panel = key, online, online.panel
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
        self.state = np.zeros(online.state_size(settings))
        online.init(self.state)
        self.ring = np.full((hist_len, len(self.names)), np.nan)
        self.pos = 0  # ring row the next step writes

    def bind(self, series: dict[str, np.ndarray] | Market) -> None:
        """Read from these buffers from now on (the argument tuple is built once, not per bar)."""
        arrays = series.arrays(self.online.series) if isinstance(series, Market) else \
            tuple(series[k] for k in self.online.series)
        self.args = (*arrays, *self.params, self.state)

    def step(self, t: int, warm: bool = False) -> None:
        fn = (self.online.warm or self.online.step) if warm else self.online.step
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
            if table.panel:  # stateless, on the market grid: the kept rows only
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
        s["bqx"][t] = bqx_core.bqx_point(s["idx"], t, self.target, self.v1)
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
            where = [(*self.columns[split_feature(f)[1]], split_feature(f)[2]) for f in features]
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


@dataclass(frozen=True)
class RequestBars:
    """One pair's bars from a request, validated: UTC ns times and float columns."""

    ns: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ns)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"ts_utc": pd.DatetimeIndex(self.ns.astype("datetime64[ns]"), tz="UTC"), **self.values})

    def bar(self, i: int) -> dict[str, float]:
        return {k: float(v[i]) for k, v in self.values.items()}

    def then(self, later: RequestBars, keep: int) -> RequestBars:
        """These bars followed by the rows of ``later`` after them, the newest ``keep`` rows at most."""
        new = later.ns > self.ns[-1]
        cols = sorted(set(self.values) | set(later.values))
        ns = np.concatenate([self.ns, later.ns[new]])[-keep:]
        values = {c: np.concatenate([self.values.get(c, np.full(len(self.ns), np.nan)),
                                     later.values.get(c, np.full(len(later.ns), np.nan))[new]])[-keep:]
                  for c in cols}
        return RequestBars(ns, values)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BAR_COLUMNS = frozenset((*PRICE_COLUMNS, *OPTIONAL_COLUMNS))


def _plain_bars(raw: list[dict]) -> RequestBars | None:
    """The common case parsed without pandas: ISO 8601 strings with an offset, numbers for every column,
    the same columns in every bar. None for anything else (the pandas path then names the problem)."""
    cols = [c for c in (*PRICE_COLUMNS, *OPTIONAL_COLUMNS) if c in raw[0]]
    present = set(cols)
    ns = np.empty(len(raw), dtype=np.int64)
    values = {c: np.empty(len(raw)) for c in cols}
    for i, b in enumerate(raw):
        ts = b.get("ts_utc")
        if not isinstance(ts, str) or b.keys() & _BAR_COLUMNS != present:
            return None
        try:
            when = datetime.fromisoformat(ts)
        except ValueError:
            return None
        if when.tzinfo is None:
            return None
        delta = when - _EPOCH
        ns[i] = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
        for c in cols:
            v = b[c]
            if type(v) not in (int, float):
                return None
            values[c][i] = v
    return RequestBars(ns, values)


def parse_bars(raw: object, pair: str, checked: bool = True) -> RequestBars:
    """The request's bars, validated by the same rules as bar files (``checked`` False: the common
    form parsed but its row rules left to :func:`parse_market_bars`); 400 naming the row and field of
    the first problem."""
    if not isinstance(raw, list) or not raw or not all(isinstance(b, dict) for b in raw):
        raise PayloadError(400, "'bars' must be a non-empty list of objects {ts_utc, open, high, low, close[, volume]}")
    try:
        plain = _plain_bars(raw)
        if plain is not None:
            if checked:
                check_rows(plain.ns, plain.values, "request", pair)
            return plain
        frame = validate_bars(pd.DataFrame(raw), "request", pair)
    except BarValidationError as exc:
        raise PayloadError(400, f"bars: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(400, f"bars: {exc}") from None
    return RequestBars(pd.DatetimeIndex(frame["ts_utc"]).asi8,
                       {c: frame[c].to_numpy(dtype=np.float64) for c in frame.columns if c != "ts_utc"})


def parse_market_bars(raw: dict[str, object]) -> dict[str, RequestBars]:
    """Every pair's bars of a ``{pair: [bars]}`` request, the row rules checked over all pairs at once
    (a minute of 28 pairs: one pass instead of 28)."""
    frames = {}
    for p, bars in raw.items():
        if p not in PAIRS:
            raise PayloadError(400, f"bars: {p!r} is not one of the 28 pairs")
        frames[p] = parse_bars(bars, p, checked=False)
    try:
        check_many({p: (b.ns, b.values) for p, b in frames.items()}, "request")
    except BarValidationError as exc:
        raise PayloadError(400, f"bars: {exc}") from None
    return frames


@dataclass(frozen=True)
class _ModelPlan:
    """A model's raw-bars serving needs: its tables (and the cross-pair ones), settings, the package's
    ``online_state`` (written by extract; engines are shared only under the same one), and the bars
    of history its state starts from."""

    tables: tuple[str, ...]
    panel: list[str]
    settings: Settings
    snapshot: dict | None
    snapshot_key: str
    max_lag: int
    need: int


class OnlineRegistry:
    """Per-pair engines and per-panel markets shared by the server's threads.

    A raw-bars request sends ``bars`` as a list (the model's pair) or as ``{pair: [bars]}``. Models that
    use cross-pair features need the object form with every pair of their panel (the run's pairs):
    the market advances by every grid time in the request, then the pair's engine by its own bars.
    One lock per pair keeps bar order; market-mode requests also hold the market lock, so no request
    reads a market while another appends to (or compacts) it.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.engines: dict[tuple[str, tuple[str, ...], str], PairEngine] = {}
        self.markets: dict[tuple, Market] = {}
        self.pending: dict[tuple, dict[str, RequestBars]] = {}  # history accepted before a state is seeded
        self._plans: dict[tuple[str, str], _ModelPlan] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._market_lock = threading.Lock()

    def features_for(self, model: object, raw_bars: object) -> tuple[np.ndarray, list[pd.Timestamp]]:
        features: list[str] = model.features  # type: ignore[attr-defined]
        pair: str = model.pair  # type: ignore[attr-defined]
        name: str = model.name  # type: ignore[attr-defined]
        plan = self._model_plan(model)
        panel, settings = plan.panel, plan.settings
        frames = self._frames(raw_bars, pair)
        if panel and (not isinstance(raw_bars, dict) or any(p not in frames for p in settings.features.pairs)):
            missing = [p for p in settings.features.pairs if p not in frames]
            cross = [f for f in features if split_feature(f)[0] in panel]
            raise PayloadError(422, f"model {name!r} uses {len(cross)} cross-pair feature(s) (e.g. "
                                    f"{', '.join(cross[:3])}): send 'bars' as {{pair: [bars]}} with every pair of "
                                    f"its panel; missing: {', '.join(missing)}")
        with self._lock:
            lock = self._locks.setdefault(pair, threading.Lock())
        with lock:
            if not panel:
                return self._advance(model, plan, frames[pair], None)
            with self._market_lock:
                f = settings.features
                mkey = ("market", tuple(f.pairs), f.target_window, f.bqx_version)
                market = self.markets.get(mkey)
                if market is None:
                    frames = self._history(mkey, frames, 2 * plan.need)
                    if len(frames[pair]) < plan.need:
                        raise WarmingUp(name, pair, len(frames[pair]), plan.need)
                    del self.pending[mkey]
                    market = Market({p: frames[p].frame() for p in settings.features.pairs}, settings,
                                    market_keep(settings))
                    self.markets[mkey] = market
                else:
                    market.advance_bars(frames)
                try:
                    return self._advance(model, plan, frames[pair], market)
                except MarketGapError as exc:
                    raise PayloadError(400, f"pair {pair}: {exc}") from None

    def _model_plan(self, model: object) -> _ModelPlan:
        """What serving the model from raw bars needs, worked out once per model version."""
        cache_key = (model.name, model.version)  # type: ignore[attr-defined]
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        features: list[str] = model.features  # type: ignore[attr-defined]
        name: str = model.name  # type: ignore[attr-defined]
        unknown = sorted({split_feature(f)[0] for f in features} - set(FAMILIES))
        if unknown:
            raise PayloadError(422, f"model {name!r}: no feature family computes table(s) {', '.join(unknown[:5])}: "
                                    "send feature rows")
        refused = not_online(features)
        if refused:
            raise PayloadError(422, f"model {name!r} uses {len(refused)} feature(s) not computed online, e.g. "
                                    f"{', '.join(refused[:5])}: send feature rows instead")
        tables = tuple(tables_for(features))
        panel = [t for t in tables if FAMILIES[t].online.panel]  # type: ignore[union-attr]
        settings = self.settings or Settings.from_dict(_model_settings(model))
        state = model.loaded.selection.get("online_state")  # type: ignore[attr-defined]
        snapshot = state if isinstance(state, dict) else None
        if settings.features.bar_interval_s is None and snapshot and snapshot.get("bar_interval_s"):
            settings = settings.replace(bar_interval_s=int(snapshot["bar_interval_s"]))
        if snapshot and snapshot.get("pairs"):  # the run's panel, which may be a subset of the 28 pairs
            settings = settings.replace(pairs=tuple(snapshot["pairs"]))
        max_lag = max(lag_of(f) for f in features)
        # every table past its warm-up at the oldest lagged row a model input reads
        need = max(tail_length(t, settings, snapshot) for t in tables) + max_lag + 1
        plan = _ModelPlan(tables, panel, settings, snapshot, json.dumps(snapshot, sort_keys=True), max_lag, need)
        self._plans[cache_key] = plan
        return plan

    def _history(self, key: tuple, frames: dict[str, RequestBars], keep: int) -> dict[str, RequestBars]:
        """Bars accepted earlier under ``key`` followed by this request's (kept for the next request)."""
        held = self.pending.get(key, {})
        joined = {p: held[p].then(b, keep) if p in held else b for p, b in frames.items()}
        joined.update({p: b for p, b in held.items() if p not in joined})
        self.pending[key] = joined
        return joined

    @staticmethod
    def _frames(raw_bars: object, pair: str) -> dict[str, RequestBars]:
        if not isinstance(raw_bars, dict):
            return {pair: parse_bars(raw_bars, pair)}
        frames = parse_market_bars(raw_bars)
        if pair not in frames:
            raise PayloadError(400, f"bars: no bars of the model's pair {pair}")
        return frames

    def _advance(self, model: object, plan: _ModelPlan, bars: RequestBars,
                 market: Market | None) -> tuple[np.ndarray, list[pd.Timestamp]]:
        features: list[str] = model.features  # type: ignore[attr-defined]
        pair: str = model.pair  # type: ignore[attr-defined]
        key = (pair, plan.tables, plan.snapshot_key)
        engine = self.engines.get(key)
        if engine is None:
            bars = self._history(key, {pair: bars}, 2 * plan.need)[pair]
            if len(bars) < plan.need:
                raise WarmingUp(model.name, pair, len(bars), plan.need)  # type: ignore[attr-defined]
            del self.pending[key]
            engine = PairEngine(pair, bars.frame(), list(plan.tables), plan.settings, plan.max_lag, market,
                                plan.snapshot)
            unknown = [f for f in features if split_feature(f)[1] not in engine.columns]
            if unknown:
                raise PayloadError(422, f"model {model.name!r}: {len(unknown)} feature(s) are not in the "  # type: ignore[attr-defined]
                                        f"feature catalog, e.g. {', '.join(unknown[:5])}: send feature rows")
            self.engines[key] = engine
        else:
            for i in np.flatnonzero(bars.ns > engine.last_ts):
                engine.update(bars.bar(i), int(bars.ns[i]))
        return engine.row(features)[None, :], [pd.Timestamp(engine.last_ts, tz="UTC")]


def _model_settings(model: object) -> dict:
    data = dict(model.loaded.selection.get("settings") or {})  # type: ignore[attr-defined]
    known = {f.name for f in dataclasses.fields(Settings)}
    return {k: v for k, v in data.items() if k in known}


def compile_kernels() -> float:
    """Compile every online kernel with the argument types serving uses (numba caches them on disk),
    by seeding a market and one pair with every table on sample bars and advancing a minute; returns
    the seconds it took (about 30 cold, under 1 with the cache). The serve image runs it at build time."""
    from bqx.sample import generate

    t0 = time.perf_counter()
    settings = Settings()
    bars = generate(list(settings.features.pairs), days=3, seed=0)
    grid = np.unique(np.concatenate([b["ts_utc"].astype("int64").to_numpy() for b in bars.values()]))
    before = {p: b[b["ts_utc"].astype("int64") < grid[-1]] for p, b in bars.items()}
    market = Market(before, settings, market_keep(settings))
    pair = settings.features.pairs[0]
    engine = PairEngine(pair, before[pair], list(FAMILIES), settings, settings.splits.max_lag, market)
    market.advance_bars(bars)
    last = bars[pair].iloc[-1]
    engine.update({k: float(last[k]) for k in bars[pair].columns if k != "ts_utc"}, int(last["ts_utc"].value))
    return time.perf_counter() - t0
