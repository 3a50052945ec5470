"""The feature catalog: every table with its domain and flags (docs/architecture.md, "The catalog").

A table's features are the names its family declares (:mod:`bqx.features.registry`); every count here
is derived from them, so a feature added to a family is counted, lagged and sized with nothing else to
edit. Feature names are ``{table}.{feature}`` with the pair-free table key (``technical_idx.rsi_14``);
the stored table of a pair is ``{table}_{pair}``. Lagged candidates are ``{feature}_lag{k}``. Everything
``bqx plan``, lagging and selection report is derived here from :data:`TABLES`, the families' names
and the settings.
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
    laggable: bool
    advanced: bool
    per_pair: bool
    contents: str

    def table_name(self, pair: str) -> str:
        return f"{self.key}_{pair}" if self.per_pair else self.key


def _t(key: str, domain: Domain, contents: str, *, laggable: bool = False, advanced: bool = False,
       per_pair: bool = True) -> TableSpec:
    return TableSpec(key, domain, laggable, advanced, per_pair, contents)


TABLES: tuple[TableSpec, ...] = (
    _t("technical_idx", "idx", "RSI, MACD, stochastic, CCI, Williams %R, ROC, ATR, ADX, ... on rate_idx",
       laggable=True),
    _t("technical_bqx", "bqx", "the same indicators on BQX (ppo_12_26 bounded: EMA12 - EMA26 over the "
       "series' 100-row sd, since BQX crosses zero)", laggable=True),
    _t("statistics_bqx", "bqx", "rolling moments, percentiles, IQR, MAD, entropy, autocorr, Jarque-Bera"),
    _t("bollinger_bqx", "bqx", "bands, width, %B, slope over 20/30/60/120", laggable=True),
    _t("fibonacci_bqx", "bqx", "retracement levels and distances over rolling swings"),
    _t("correlation_idx", "idx", "rolling correlations of this pair's returns with other pairs"),
    _t("correlation_bqx", "bqx", "the same on BQX"),
    _t("error_correction", "cross", "cointegration residuals, z-scores, half-life, velocity", advanced=True),
    _t("realized_vol", "idx", "Parkinson, Garman-Klass, Rogers-Satchell, Yang-Zhang, bipower, jumps",
       laggable=True, advanced=True),
    _t("hmm_regime", "cross", "3-state forward-filtered regime probabilities, durations, CUSUM", advanced=True),
    _t("cross_sectional_panel", "cross", "currency strength, ranks, dispersion, triangle residuals",
       advanced=True, per_pair=False),
    _t("spectral_features", "cross", "FFT band power and entropy, db4 wavelet energies", advanced=True),
    _t("bqx", "bqx", "BQX core: 5 windows x 6 stats + 7 aggregates + 3 core", laggable=True),
    _t("reg_idx", "idx", "quadratic fit of rate_idx, 6 windows x 12 fields", laggable=True),
    _t("reg_bqx", "bqx", "the same fit of BQX", laggable=True),
    _t("volume_features", "cross", "volume / tick-count features (NaN-safe without volume)"),
    _t("time_features", "cross", "calendar and session (Tokyo/London/NY) encodings"),
    _t("spread_features", "idx", "bid/ask spread, high-low proxy otherwise"),
    _t("moving_avg_idx", "idx", "SMA/EMA distances and slopes", laggable=True),
    _t("multi_resolution_idx", "idx", "returns and ranges at several resolutions"),
    _t("dual_domain", "cross", "rate_idx vs BQX comparisons"),
    _t("cross_pair", "cross", "pair vs its base and quote currency baskets"),
    _t("event_regime", "cross", "shocks, breakouts, session opens"),
    _t("multi_scale", "cross", "features of 30- and 60-minute bars, aligned causally", advanced=True),
    _t("parabolic", "cross", "REG comparisons across windows and domains", advanced=True),
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
    def features(self) -> tuple[Feature, ...]:
        """Every base feature under these settings, in catalog order."""
        return tuple(Feature(feature_column(t.key, n), t.key, t.domain, t.laggable)
                     for t in self.tables for n in FAMILIES[t.key].names(self.settings))

    @cached_property
    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    def domain_of(self, column: str) -> Domain:
        """Domain of a base or lagged feature column."""
        return self.by_name[base_name(column)].domain

    def warmup_rows(self) -> int:
        """Leading rows (after the baseline) dropped by extract: the longest warm-up of any table."""
        return max(FAMILIES[t.key].warmup(self.settings) for t in self.tables)

    # ---- lagging -------------------------------------------------------------------------------------
    def lag_plan(self) -> list[tuple[str, int]]:
        """(base feature, lag) for every lagged candidate: laggable x lags, plus core x causality lag."""
        s = self.settings
        plan = [(f.name, k) for f in self.features if f.laggable for k in s.splits.lags]
        plan += [(f.name, s.splits.causality_lag) for f in self.features if f.table == CORE_TABLE]
        return plan

    def candidate_names(self) -> list[str]:
        return [f.name for f in self.features] + [lag_name(n, k) for n, k in self.lag_plan()]

    # ---- counts: derived from the families' names ---------------------------------------------------
    def counts(self) -> dict[str, int]:
        base = len(self.features)
        laggable = sum(1 for f in self.features if f.laggable)
        lagged = len(self.lag_plan())
        return {"base": base, "laggable": laggable, "lagged": lagged, "candidates": base + lagged}

    def domain_counts(self) -> dict[str, int]:
        return {d: sum(1 for f in self.features if f.domain == d) for d in DOMAINS}

    def table_counts(self) -> dict[str, int]:
        return {t.key: sum(1 for f in self.features if f.table == t.key) for t in self.tables}

    def version(self) -> str:
        """Hash of the catalog structure and the settings that shape names; stored with models."""
        count = self.table_counts()
        doc = {
            "tables": [[t.key, t.domain, count[t.key], t.laggable, t.advanced] for t in self.tables],
            "features": [f.name for f in self.features],
            "lags": list(self.settings.splits.lags),
            "causality_lag": self.settings.splits.causality_lag,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


