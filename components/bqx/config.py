"""Typed settings for every stage. One frozen dataclass, serialisable to JSON, hashed for provenance.

Counts (features, candidates, quotas) are never settings: they are derived from the catalog and these
settings by :mod:`bqx.catalog`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from bqx.pairs import PAIRS, check_pair

BqxVersion = Literal["v1", "v3"]
Profile = Literal["full", "base"]


@dataclass(frozen=True)
class TrainSettings:
    """CatBoost hyperparameters (passed to the SageMaker training contract as strings)."""

    iterations: int = 300
    depth: int = 6
    learning_rate: float = 0.08
    loss_function: str = "RMSE"
    thread_count: int = 2
    early_stopping_rounds: int = 50


@dataclass(frozen=True)
class AwsSettings:
    """Where and how the sagemaker backends run. Empty names must be set before using those backends."""

    region: str = "us-east-1"
    bucket: str = ""
    prefix: str = "bqx-ml"
    role_arn: str = ""
    train_image: str = ""  # ECR URI of images/train (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/bqx-train:0.1.0)
    serve_image: str = ""  # ECR URI of the serving image
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_gb: int = 30
    max_runtime_s: int = 3600
    poll_s: float = 15.0
    wait_timeout_s: float = 3 * 3600
    endpoint_name: str = "bqx-fx"
    endpoint_instance_type: str = "ml.m5.large"
    endpoint_instance_count: int = 1
    autoscale_min: int = 1
    autoscale_max: int = 2
    autoscale_invocations_per_instance: float = 1000.0


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on. Defaults follow DESIGN.md sections 3 and 4."""

    pairs: tuple[str, ...] = PAIRS
    profile: Profile = "full"
    # rate_idx baseline: first close at or after this instant (or the first bar of the data).
    baseline_date: str = "2024-07-01T00:00:00Z"
    # BQX definition: v1 (backward momentum, default) or v3 (percent change over N rows).
    bqx_version: BqxVersion = "v1"
    bqx_windows: tuple[int, ...] = (15, 30, 45, 60, 75)
    bqx_agg_window: int = 75
    bqx_v3_windows: tuple[int, ...] = (45, 90, 180, 360, 720, 1440, 2880)
    reg_windows: tuple[int, ...] = (60, 90, 150, 240, 390, 630)
    # HMM regimes: parameters are fitted on the first hmm_fit_rows bars (their features are warm-up),
    # then the filter runs forward only.
    hmm_fit_rows: int = 2880
    # Target: target_bqx{W}_h{H} = bqx_W(t + H). The first horizon is the one models train on.
    target_window: int = 60
    horizons: tuple[int, ...] = (60,)
    # Lagging: every laggable feature at these row lags; bqx core features also at the causality lag.
    lags: tuple[int, ...] = (60, 120, 180, 240)
    causality_lag: int = 61
    # Selection: keep n_select per pair, at least min_per_domain of idx and of bqx (scaled down when
    # fewer candidates exist, see bqx.selection.effective_quota).
    n_select: int = 250
    min_idx: int = 100
    min_bqx: int = 100
    selection_sample_rows: int = 20_000
    # Walk-forward split fractions (in time order); purge/embargo rows are derived in bqx.splits.
    train_fraction: float = 0.70
    val_fraction: float = 0.15
    # Evaluation: round-trip trading cost of the long/short signal, in bps of price.
    eval_cost_bps: float = 1.0
    # Drift: share of drifted features per domain that raises a warning / critical status.
    drift_warning_share: float = 0.25
    drift_critical_share: float = 0.5
    drift_sample_rows: int = 5_000
    # Per-feature drift test: Evidently's choice unless set (e.g. "wasserstein", "kl_div", "psi", "ks"),
    # its threshold, and per-feature overrides {feature: method} / {feature: threshold}.
    drift_method: str | None = None
    drift_threshold: float | None = None
    drift_feature_methods: dict[str, str] = field(default_factory=dict)
    drift_feature_thresholds: dict[str, float] = field(default_factory=dict)
    # Alerting: publish to this SNS topic when any domain is critical ("" = no alerts).
    drift_sns_topic_arn: str = ""
    seed: int = 42
    train: TrainSettings = field(default_factory=TrainSettings)
    aws: AwsSettings = field(default_factory=AwsSettings)

    def __post_init__(self) -> None:
        for pair in self.pairs:
            check_pair(pair)
        if self.bqx_version not in ("v1", "v3"):
            raise ValueError(f"bqx_version must be 'v1' or 'v3', got {self.bqx_version!r}")
        if self.profile not in ("full", "base"):
            raise ValueError(f"profile must be 'full' or 'base', got {self.profile!r}")
        if not self.horizons or any(h <= 0 for h in self.horizons):
            raise ValueError(f"horizons must be positive row counts, got {self.horizons!r}")
        if not 0 < self.train_fraction + self.val_fraction < 1:
            raise ValueError("train_fraction + val_fraction must be between 0 and 1")

    @property
    def horizon(self) -> int:
        """The horizon models are trained on (the first of ``horizons``)."""
        return self.horizons[0]

    @property
    def target_name(self) -> str:
        return target_column(self.target_window, self.horizon)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def settings_hash(self) -> str:
        """Short stable hash of all settings; stored with every model for provenance."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown settings field(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        nested = {"train": TrainSettings, "aws": AwsSettings}
        for name, value in data.items():
            if name in nested:
                known_sub = {f.name for f in fields(nested[name])}
                bad = sorted(set(value) - known_sub)
                if bad:
                    raise ValueError(f"unknown {name} settings field(s): {', '.join(bad)}")
                kwargs[name] = nested[name](**value)
            elif isinstance(value, list):
                kwargs[name] = tuple(value)
            else:
                kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls.from_dict(json.loads(text) if text.strip() else {})

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        return cls.from_json(Path(path).read_text())


def target_column(window: int, horizon: int) -> str:
    return f"target_bqx{window}_h{horizon}"
