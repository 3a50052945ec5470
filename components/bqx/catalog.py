"""The feature catalog: every table with its domain, count and flags (docs/architecture.md, "The catalog").

This module is the single source of truth for counts. Feature names are ``{table}.{feature}`` with the
pair-free table key (``technical_idx.rsi_14``); the stored table of a pair is ``{table}_{pair}``.
Lagged candidates are ``{feature}_lag{k}``. Everything ``bqx plan``, lagging and selection report is
derived here from :data:`TABLES` and the settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from bqx.columns import base_name, feature_column, lag_name
from bqx.config import Settings
from bqx.features.registry import FAMILIES

Domain = Literal["idx", "bqx", "cross"]
DOMAINS: tuple[Domain, ...] = ("idx", "bqx", "cross")


@dataclass(frozen=True)
class TableSpec:
    key: str
    domain: Domain
    count: int
    laggable: bool
    advanced: bool
    per_pair: bool
    contents: str

    def table_name(self, pair: str) -> str:
        return f"{self.key}_{pair}" if self.per_pair else self.key

    @property
    def implemented(self) -> bool:
        return self.key in FAMILIES


def _t(key: str, domain: Domain, count: int, contents: str, *, laggable: bool = False, advanced: bool = False,
       per_pair: bool = True) -> TableSpec:
    return TableSpec(key, domain, count, laggable, advanced, per_pair, contents)


TABLES: tuple[TableSpec, ...] = (
    _t("technical_idx", "idx", 56, "RSI, MACD, stochastic, CCI, Williams %R, ROC, ATR, ADX, ... on rate_idx",
       laggable=True),
    _t("technical_bqx", "bqx", 56, "the same indicators on BQX (ppo_12_26 bounded: EMA12 - EMA26 over the "
       "series' 100-row sd, since BQX crosses zero)", laggable=True),
    _t("statistics_bqx", "bqx", 48, "rolling moments, percentiles, IQR, MAD, entropy, autocorr, Jarque-Bera"),
    _t("bollinger_bqx", "bqx", 20, "bands, width, %B, slope over 20/30/60/120", laggable=True),
    _t("fibonacci_bqx", "bqx", 20, "retracement levels and distances over rolling swings"),
    _t("correlation_idx", "idx", 45, "rolling correlations of this pair's returns with other pairs"),
    _t("correlation_bqx", "bqx", 45, "the same on BQX"),
    _t("error_correction", "cross", 30, "cointegration residuals, z-scores, half-life, velocity", advanced=True),
    _t("realized_vol", "idx", 40, "Parkinson, Garman-Klass, Rogers-Satchell, Yang-Zhang, bipower, jumps",
       laggable=True, advanced=True),
    _t("hmm_regime", "cross", 25, "3-state forward-filtered regime probabilities, durations, CUSUM", advanced=True),
    _t("cross_sectional_panel", "cross", 35, "currency strength, ranks, dispersion, triangle residuals",
       advanced=True, per_pair=False),
    _t("spectral_features", "cross", 80, "FFT band power and entropy, db4 wavelet energies", advanced=True),
    _t("bqx", "bqx", 40, "BQX core: 5 windows x 6 stats + 7 aggregates + 3 core", laggable=True),
    _t("reg_idx", "idx", 72, "quadratic fit of rate_idx, 6 windows x 12 fields", laggable=True),
    _t("reg_bqx", "bqx", 72, "the same fit of BQX", laggable=True),
    _t("volume_features", "cross", 32, "volume / tick-count features (NaN-safe without volume)"),
    _t("time_features", "cross", 20, "calendar and session (Tokyo/London/NY) encodings"),
    _t("spread_features", "idx", 6, "bid/ask spread, high-low proxy otherwise"),
    _t("moving_avg_idx", "idx", 24, "SMA/EMA distances and slopes", laggable=True),
    _t("multi_resolution_idx", "idx", 30, "returns and ranges at several resolutions"),
    _t("dual_domain", "cross", 28, "rate_idx vs BQX comparisons"),
    _t("cross_pair", "cross", 44, "pair vs its base and quote currency baskets"),
    _t("event_regime", "cross", 26, "shocks, breakouts, session opens"),
    _t("multi_scale", "cross", 60, "features of 30- and 60-minute bars, aligned causally", advanced=True),
    _t("parabolic", "cross", 126, "REG comparisons across windows and domains", advanced=True),
)

CORE_TABLE = "bqx"  # its features also get the causality lag


@dataclass(frozen=True)
class Feature:
    name: str
    table: str
    domain: Domain
    laggable: bool


class Catalog:
    """The catalog under a set of settings (profile, BQX version and windows shape the names)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    @cached_property
    def tables(self) -> tuple[TableSpec, ...]:
        """Tables in the active profile (``base`` leaves out the advanced ones)."""
        return tuple(t for t in TABLES if self.settings.features.profile == "full" or not t.advanced)

    def table(self, key: str) -> TableSpec:
        for t in TABLES:
            if t.key == key:
                return t
        raise KeyError(f"no table {key!r} in the catalog")

    @cached_property
    def computed_tables(self) -> tuple[TableSpec, ...]:
        return tuple(t for t in self.tables if t.implemented)

    @cached_property
    def features(self) -> tuple[Feature, ...]:
        """Every base feature the code computes under these settings, in catalog order."""
        out = []
        for t in self.computed_tables:
            names = FAMILIES[t.key].names(self.settings)
            if len(names) != t.count:
                raise AssertionError(f"table {t.key}: family names {len(names)} features, catalog says {t.count}")
            out.extend(Feature(feature_column(t.key, n), t.key, t.domain, t.laggable) for n in names)
        return tuple(out)

    @cached_property
    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    def domain_of(self, column: str) -> Domain:
        """Domain of a base or lagged feature column."""
        return self.by_name[base_name(column)].domain

    def warmup_rows(self) -> int:
        """Leading rows (after the baseline) dropped by extract: the longest warm-up of any computed table."""
        return max(FAMILIES[t.key].warmup(self.settings) for t in self.computed_tables)

    # ---- lagging -------------------------------------------------------------------------------------
    def lag_plan(self) -> list[tuple[str, int]]:
        """(base feature, lag) for every lagged candidate: laggable x lags, plus core x causality lag."""
        s = self.settings
        plan = [(f.name, k) for f in self.features if f.laggable for k in s.splits.lags]
        plan += [(f.name, s.splits.causality_lag) for f in self.features if f.table == CORE_TABLE]
        return plan

    def candidate_names(self) -> list[str]:
        return [f.name for f in self.features] + [lag_name(n, k) for n, k in self.lag_plan()]

    # ---- counts (planned = full catalog; computed = what the code produces today) ---------------------
    def planned_counts(self) -> dict[str, int]:
        s = self.settings
        base = sum(t.count for t in self.tables)
        laggable = sum(t.count for t in self.tables if t.laggable)
        core = sum(t.count for t in self.tables if t.key == CORE_TABLE)
        lagged = laggable * len(s.splits.lags) + core
        return {"base": base, "laggable": laggable, "lagged": lagged, "candidates": base + lagged}

    def planned_domain_counts(self) -> dict[str, int]:
        return {d: sum(t.count for t in self.tables if t.domain == d) for d in DOMAINS}

    def version(self) -> str:
        """Hash of the catalog structure and the settings that shape names; stored with models."""
        doc = {
            "tables": [[t.key, t.domain, t.count, t.laggable, t.advanced] for t in self.tables],
            "features": [f.name for f in self.features],
            "lags": list(self.settings.splits.lags),
            "causality_lag": self.settings.splits.causality_lag,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


