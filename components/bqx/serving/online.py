"""Raw-bars requests end to end: which tables and lags a model reads (its plan), the per-pair engines
and the shared market kept between requests, and the kernel compilation the serve image runs at build
time. The engine itself is :mod:`bqx.serving.engine`; the request's bars :mod:`bqx.serving.request_bars`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bqx.columns import lag_of, parse
from bqx.config import Settings
from bqx.features.registry import FAMILIES
from bqx.model_package import feature_settings
from bqx.serving.engine import (
    PairEngine,
    market_keep,
    not_online,
    tables_for,
    tail_length,
)
from bqx.serving.market import Market, MarketGapError
from bqx.serving.payload import PayloadError, WarmingUp
from bqx.serving.request_bars import RequestBars, parse_bars, parse_market_bars


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
            cross = [f for f in features if parse(f).table in panel]
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
        unknown = sorted({parse(f).table for f in features} - set(FAMILIES))
        if unknown:
            raise PayloadError(422, f"model {name!r}: no feature family computes table(s) {', '.join(unknown[:5])}: "
                                    "send feature rows")
        refused = not_online(features)
        if refused:
            raise PayloadError(422, f"model {name!r} uses {len(refused)} feature(s) not computed online, e.g. "
                                    f"{', '.join(refused[:5])}: send feature rows instead")
        tables = tuple(tables_for(features))
        panel = [t for t in tables if FAMILIES[t].online.panel]  # type: ignore[union-attr]
        settings, snapshot = feature_settings(model.loaded.selection, self.settings)  # type: ignore[attr-defined]
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
            unknown = [f for f in features if parse(f).base not in engine.columns]
            if unknown:
                raise PayloadError(422, f"model {model.name!r}: {len(unknown)} feature(s) are not in the "  # type: ignore[attr-defined]
                                        f"feature catalog, e.g. {', '.join(unknown[:5])}: send feature rows")
            self.engines[key] = engine
        else:
            for i in np.flatnonzero(bars.ns > engine.last_ts):
                engine.update(bars.bar(i), int(bars.ns[i]))
        return engine.row(features)[None, :], [pd.Timestamp(engine.last_ts, tz="UTC")]


def compile_kernels() -> float:
    """Compile every online kernel with the argument types serving uses (numba caches them on disk),
    by seeding a market and one pair with every table on sample bars and advancing a minute; returns
    the seconds it took (minutes cold, the declared kernels compiled on every core; about 1 s with the
    cache). The serve image runs it at build time."""
    import os

    from bqx.features.registry import compile_declared
    from bqx.sample import generate

    t0 = time.perf_counter()
    settings = Settings()
    for _ in compile_declared(settings, workers=os.cpu_count() or 1):  # the declared kernels' step, in parallel
        pass
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
