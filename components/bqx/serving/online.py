"""The online feature engine: per-pair state that advances one bar at a time and yields the same
values as the batch engine (``bqx.extract``) on the same bars.

Seeding runs the batch family functions once over the pair's history inside a recording
:class:`bqx.features.stream.Stream` per table; after that each new bar costs one run of each needed
table on its tail (the table's warm-up rows plus a margin), in which the recursive primitives continue
from their carried state (see :mod:`bqx.features.stream`). Lagged model inputs (``..._lag60``) are
read from a short history kept per base feature. The rate_idx baseline is the first seeded bar at or
after the settings' baseline date, exactly as in extract.

Tables computed from the cross-pair panel, and two tables with history-dependent state the stream
does not carry yet (``hmm_regime``: parameters fitted on the leading rows; ``multi_scale``: recursive
averages over time buckets), are not online yet: a model that selected one of their features is served
from feature rows, and a raw-bars request for it is refused naming those features.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable

import numpy as np
import pandas as pd

from bqx.bars import BarValidationError, validate_bars
from bqx.config import Settings
from bqx.extract import pair_inputs
from bqx.features import bqx_core
from bqx.features.registry import FAMILIES, PairInputs
from bqx.features.stream import Stream, running
from bqx.lagging import lag_of
from bqx.serving.payload import PayloadError

PANEL_TABLES = frozenset({"correlation_idx", "correlation_bqx", "cross_sectional_panel", "cross_pair",
                          "error_correction"})
NOT_ONLINE = PANEL_TABLES | {"hmm_regime", "multi_scale"}
TAIL_MARGIN = 4
SERIES = ("ts_ns", "open", "high", "low", "close", "volume", "bid", "ask", "idx", "idx_open", "idx_high",
          "idx_low", "bqx")


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
    return FAMILIES[table].warmup(settings) + TAIL_MARGIN


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
        self.tails = {t: tail_length(t, settings) for t in tables}
        self.bqx_tail = bqx_core.primary_warmup(settings) + 2  # rows the newest primary BQX value needs
        self.keep = max([*self.tails.values(), self.bqx_tail])
        self.hist_len = max_lag + 1
        _, inp = pair_inputs(bars, settings, pair)
        self.base_close = float(inp.close[0])
        self.buffers = {k: np.asarray(getattr(inp, k), dtype=np.float64 if k != "ts_ns" else np.int64)[-self.keep:]
                        for k in SERIES}
        self.streams: dict[str, Stream] = {}
        self.history: dict[str, np.ndarray] = {}
        for t in tables:
            stream = Stream(self.tails[t])
            with running(stream):
                block = FAMILIES[t].compute(inp, settings)
            self.streams[t] = stream
            for name, values in block.items():
                h = np.full(self.hist_len, np.nan)
                tail = np.asarray(values, dtype=np.float64)[-self.hist_len:]
                h[self.hist_len - len(tail):] = tail
                self.history[f"{t}.{name}"] = h
        self.last_ts = int(self.buffers["ts_ns"][-1])
        self.update_seconds: list[float] = []

    def _append(self, key: str, value: float) -> None:
        buf = self.buffers[key]
        buf[:-1] = buf[1:]
        buf[-1] = value

    def update(self, bar: dict[str, float], ts_ns: int) -> None:
        """Advance by one bar (already validated and later than every bar seen)."""
        t0 = time.perf_counter()
        self._append("ts_ns", ts_ns)
        for k in ("open", "high", "low", "close", "volume", "bid", "ask"):
            self._append(k, bar.get(k, np.nan))
        scale = 100.0 / self.base_close
        for src, dst in (("close", "idx"), ("open", "idx_open"), ("high", "idx_high"), ("low", "idx_low")):
            self._append(dst, bar[src] * scale)
        self._append("bqx", float(bqx_core.primary_bqx(self.buffers["idx"][-self.bqx_tail:], self.settings)[-1]))
        for t in self.tables:
            n = self.tails[t]
            inp = PairInputs(**{k: self.buffers[k][-n:] for k in SERIES}, pair=self.pair,
                             panel=None, panel_rows=np.arange(n))  # type: ignore[arg-type]
            with running(self.streams[t]):
                block = FAMILIES[t].compute(inp, self.settings)
            for name, values in block.items():
                h = self.history[f"{t}.{name}"]
                h[:-1] = h[1:]
                h[-1] = values[-1]
        self.last_ts = ts_ns
        self.update_seconds.append(time.perf_counter() - t0)

    def row(self, features: list[str]) -> np.ndarray:
        """The model's inputs at the latest bar, in the model's order."""
        out = np.empty(len(features))
        for i, f in enumerate(features):
            _, base, lag = split_feature(f)
            out[i] = self.history[base][-1 - lag]
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
                unknown = [f for f in features if split_feature(f)[1] not in engine.history]
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
