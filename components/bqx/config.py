"""Typed settings, grouped by the stage that reads them, serialisable to JSON, hashed for provenance.

A run's settings are one JSON object with one section per concern (``features``, ``splits``,
``selection``, ``training``, ``drift``, ``aws``). Each pipeline task receives only the sections its stage
reads (:data:`STAGE_SECTIONS`), so changing a drift threshold leaves extract's inputs, and KFP's cache of
it, untouched; a stage that reads a section it was not given fails with a line naming the section.

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

from bqx.columns import target_column
from bqx.pairs import PAIRS, check_pair, listed_twice

BqxVersion = Literal["v1", "v3"]
Profile = Literal["full", "base"]


@dataclass(frozen=True)
class FeatureSettings:
    """What extract computes: the panel's pairs, the rate_idx baseline, the BQX definition, the feature
    windows and the target column (future BQX)."""

    pairs: tuple[str, ...] = PAIRS
    profile: Profile = "full"
    # rate_idx baseline: the pair's first bar (None), or its first close at or after this instant, which
    # must lie inside the data (checked at ingest); earlier bars are dropped.
    baseline_date: str | None = None
    # Bar spacing in seconds: None infers it from the data (the modal spacing). The catalog's windows
    # count bars and are designed for 60 (1-minute bars); other intervals run with a warning.
    bar_interval_s: int | None = None
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

    def __post_init__(self) -> None:
        check_fields(self, "features.")
        for pair in self.pairs:
            check_pair(pair)
        twice = listed_twice(self.pairs)
        if twice:
            raise ValueError(f"settings field 'features.pairs': listed twice: {', '.join(twice)}")
        if not self.pairs:
            raise ValueError("settings field 'features.pairs': no pairs")
        if self.bqx_version not in ("v1", "v3"):
            raise ValueError(f"settings field 'features.bqx_version': must be 'v1' or 'v3', got {self.bqx_version!r}")
        if self.profile not in ("full", "base"):
            raise ValueError(f"settings field 'features.profile': must be 'full' or 'base', got {self.profile!r}")
        if not self.horizons:
            raise ValueError("settings field 'features.horizons': needs at least one horizon")
        if self.bar_interval_s is not None and self.bar_interval_s % 60:
            raise ValueError(f"settings field 'features.bar_interval_s': must be a whole number of minutes in "
                             f"seconds (60, 300, 3600, ...), got {self.bar_interval_s}")
        if self.baseline_date is not None:
            try:
                import pandas as pd

                pd.Timestamp(self.baseline_date)
            except ValueError:
                raise ValueError(f"settings field 'features.baseline_date': cannot parse {self.baseline_date!r} "
                                 f"as a date (write e.g. 2024-07-01T00:00:00Z)") from None

    @property
    def horizon(self) -> int:
        """The horizon models are trained on (the first of ``horizons``)."""
        return self.horizons[0]

    @property
    def target_name(self) -> str:
        return target_column(self.target_window, self.horizon)


@dataclass(frozen=True)
class SplitSettings:
    """Which rows a model learns from and at which lags: the candidates' lags and the purged split."""

    # Lagging: every laggable feature at these row lags; bqx core features also at the causality lag.
    lags: tuple[int, ...] = (60, 120, 180, 240)
    causality_lag: int = 61
    # Walk-forward split fractions (in time order); purge/embargo rows are derived in bqx.splits.
    train_fraction: float = 0.70
    val_fraction: float = 0.15

    def __post_init__(self) -> None:
        check_fields(self, "splits.")
        if not 0 < self.train_fraction + self.val_fraction < 1:
            raise ValueError("settings fields 'splits.train_fraction' + 'splits.val_fraction': must add up to "
                             "less than 1")

    @property
    def max_lag(self) -> int:
        """The longest lag any candidate has: rows a candidate row needs behind it."""
        return max(*self.lags, self.causality_lag)


@dataclass(frozen=True)
class SelectionSettings:
    """Keep n_select per pair, at least min_idx of rate_idx and min_bqx of BQX features (scaled down when
    fewer candidates exist, see bqx.select.effective_quota), ranked on sample_rows training rows."""

    n_select: int = 250
    min_idx: int = 100
    min_bqx: int = 100
    sample_rows: int = 20_000
    seed: int = 42  # the row sample and the importance model
    thread_count: int = 2  # the importance model's CatBoost threads (the select task's CPU request)
    # The share of candidates each split of the importance model scores (CatBoost's rsm). 0.1 fits in
    # 0.38x the time of 1.0, and models trained on its selections were as good out of sample over 28
    # pairs (bench/catboost_settings.py, bench/README.md).
    rsm: float = 0.1

    def __post_init__(self) -> None:
        check_fields(self, "selection.")
        if not 0 < self.rsm <= 1:
            raise ValueError(f"settings field 'selection.rsm': must be in (0, 1], got {self.rsm}")
        if self.min_idx + self.min_bqx > self.n_select:
            raise ValueError(f"settings fields 'selection.min_idx' + 'selection.min_bqx' ({self.min_idx} + "
                             f"{self.min_bqx}): the domain quotas exceed 'selection.n_select' ({self.n_select})")


# the CatBoost hyperparameters among TrainingSettings' fields (passed to the SageMaker contract as strings)
HYPERPARAMETERS = ("iterations", "depth", "learning_rate", "l2_leaf_reg", "border_count", "loss_function",
                   "thread_count", "early_stopping_rounds")


@dataclass(frozen=True)
class TrainingSettings:
    """CatBoost hyperparameters, the walk-forward evaluation and the trading cost the evaluation charges."""

    iterations: int = 300
    depth: int = 6
    learning_rate: float = 0.08
    l2_leaf_reg: float = 3.0  # CatBoost's default L2 regularisation of leaf values
    # Split candidates per feature (CatBoost's quantisation; its CPU default is 254). A fit's time grows
    # with it; 64 fits in 0.45-0.87x the time with no worse out-of-sample RMSE over 28 pairs
    # (bench/catboost_settings.py, bench/README.md).
    border_count: int = 64
    loss_function: str = "RMSE"
    thread_count: int = 2
    early_stopping_rounds: int = 50
    # Fits learn from every fit_stride-th row of their training rows (counted back from the newest): a
    # minute's target overlaps its neighbours' by horizon - 1 bars, so the rows between add little but
    # time. Early stopping, tuning's validation and every evaluation use all rows; 1 = every row. 4 fits
    # in 0.36x the time of 1 with no worse walk-forward RMSE (7 pairs x 120 days: +0.10% +- 0.42; 28 x
    # 30 days: -0.08% +- 0.29; bench/catboost_settings.py --part fit_stride, bench/README.md).
    fit_stride: int = 4
    # Walk-forward evaluation: purged expanding-window folds over the validation and test span whose
    # out-of-sample predictions are pooled (0 = the test split alone); see bqx.train.walk_forward.
    walk_forward_folds: int = 3
    # Evaluation: round-trip trading cost of the long/short signal, in bps of price.
    eval_cost_bps: float = 1.0
    seed: int = 42
    # The tune stage: this many trials per pair search depth, learning rate, l2 and iterations on the
    # validation split (bqx.tune.space) before training; 0 trains with the values above. On SageMaker and
    # ACK up to tune_parallel trials run at once.
    tune_trials: int = 0
    tune_parallel: int = 2

    def __post_init__(self) -> None:
        check_fields(self, "training.")

    def hyperparameters(self) -> dict[str, Any]:
        """CatBoost's parameters, by CatBoost's names."""
        return {name: getattr(self, name) for name in HYPERPARAMETERS}


@dataclass(frozen=True)
class RegistrySettings:
    """Every trained model is registered as a version; the gate decides which versions may serve."""

    # where versions are kept on the local deploy backend ("" = inside the deploy's own repository, so a
    # run knows only its own models; `bqx run --local` uses {out}/registry). The sagemaker and ack
    # backends keep them in SageMaker's Model Registry: a model package group per pair, {aws.prefix}-{pair}.
    uri: str = ""
    gate: bool = True  # False approves every trained model
    # a model is approved when its test-split RMSE is below both the zero and the persistence forecast's
    # by at least this fraction of theirs (0.02 = 2 % better than the better of the two)
    min_improvement: float = 0.0
    manual_approval: bool = False  # a model that passes waits as PendingManualApproval for `bqx approve`
    # A/B verdicts (bqx.ab.decide): "metrics" promotes a candidate whose live error is significantly lower,
    # "window" promotes at the window's end unless it is significantly higher; judged once ab_window_h
    # hours have passed, on at least ab_min_hours hours in which both variants answered
    ab_policy: str = "metrics"
    ab_window_h: float = 72.0
    ab_min_hours: int = 24
    ab_alpha: float = 0.05

    def __post_init__(self) -> None:
        check_fields(self, "registry.")
        if self.ab_policy not in ("metrics", "window"):
            raise ValueError(f"settings field 'registry.ab_policy': metrics or window, got {self.ab_policy!r}")
        if not 0 < self.ab_alpha < 0.5:
            raise ValueError(f"settings field 'registry.ab_alpha': a significance level between 0 and 0.5, got "
                             f"{self.ab_alpha}")
        if self.min_improvement >= 1:
            raise ValueError(f"settings field 'registry.min_improvement': a fraction below 1, got "
                             f"{self.min_improvement}")


@dataclass(frozen=True)
class DriftSettings:
    """When drift warns or alerts, and how the HTML's Evidently section tests each feature."""

    # A domain's drift index (the mean of its features' scores, each its distance from the reference over
    # the largest the reference showed by itself; bqx.drift.scores) that raises a warning / critical
    # status. Rows are thinned so the reference keeps 4 x sample_rows.
    warning_index: float = 1.0
    critical_index: float = 1.35  # from bench/drift_calibration.py: between unchanged and shifted quantiles
    sample_rows: int = 5_000
    # The HTML's Evidently section: normed Wasserstein at the calibrated threshold unless set (e.g.
    # "kl_div", "psi", "ks"), its threshold, and per-feature overrides {feature: method} / {feature: threshold}.
    method: str | None = None
    threshold: float | None = None
    feature_methods: dict[str, str] = field(default_factory=dict)
    feature_thresholds: dict[str, float] = field(default_factory=dict)
    # Alerting: publish to this SNS topic when any domain is critical ("" = no alerts).
    sns_topic_arn: str = ""

    def __post_init__(self) -> None:
        check_fields(self, "drift.")
        if self.warning_index > self.critical_index:
            raise ValueError("settings field 'drift.warning_index': must not exceed 'drift.critical_index'")


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
    # training jobs: managed spot capacity (checkpoints under s3://{bucket}/{prefix}/checkpoints/, the
    # entrypoint resumes from them), a VPC, a KMS key for the output and the volume, tags on everything
    spot: bool = False
    max_wait_s: int = 7200  # spot: the whole wait for capacity plus the run, at least max_runtime_s
    vpc_subnets: tuple[str, ...] = ()
    vpc_security_groups: tuple[str, ...] = ()
    kms_key_id: str = ""
    tags: tuple[tuple[str, str], ...] = ()  # settings JSON: {"key": "value", ...}; kept as sorted pairs (hashable)
    max_attempts: int = 3  # a pair's training job is tried under this many names before the pair fails
    # endpoint updates: blue/green, all traffic at once after a baking period with the new fleet; these
    # CloudWatch alarms roll the update back when they fire during it
    rollback_alarms: tuple[str, ...] = ()
    baking_s: int = 300
    endpoint_timeout_s: float = 3600.0  # how long create/update may take before the deploy fails
    data_capture_s3_uri: str = ""  # s3:// prefix: SageMaker captures requests and responses there
    data_capture_percent: int = 100
    # A/B: with a percentage here, a deploy whose models differ from the ones the endpoint serves starts an
    # A/B test instead of replacing them: two production variants, "current" and "candidate", the
    # candidate taking this percentage of the traffic until `bqx ab decide --apply` (or promote/rollback)
    ab_candidate_percent: int = 0
    # batch prediction on SageMaker (bqx predict --backend sagemaker): one Batch Transform job per pair on
    # the serving image; SageMaker sends the feature rows as CSV in requests of at most this many MB
    transform_instance_type: str = "ml.m5.large"
    transform_max_payload_mb: int = 6
    # the ack backends: SageMaker through the ACK controller's custom resources on a Kubernetes cluster
    ack_namespace: str = ""  # "" = the pod's own namespace (in a cluster) or the kubeconfig context's
    ack_kubeconfig: str = ""  # "" = in-cluster config inside a pod, else $KUBECONFIG or ~/.kube/config
    # False: delete a TrainingJob resource once its model is fetched, and endpoint resources no longer used
    ack_keep: bool = True

    def __post_init__(self) -> None:
        for name in ("vpc_subnets", "vpc_security_groups", "rollback_alarms"):  # JSON lists arrive as lists
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        tags = self.tags
        if isinstance(tags, dict):
            tags = tuple(sorted(tags.items()))
        if isinstance(tags, list | tuple):
            tags = tuple(tuple(t) if isinstance(t, list | tuple) else t for t in tags)
        object.__setattr__(self, "tags", tags)
        check_fields(self, "aws.")
        if self.spot and self.max_wait_s < self.max_runtime_s:
            raise ValueError(f"settings field 'aws.max_wait_s': with spot training it must be at least "
                             f"aws.max_runtime_s ({self.max_runtime_s}), got {self.max_wait_s}")
        if not 0 <= self.ab_candidate_percent <= 99:
            raise ValueError(f"settings field 'aws.ab_candidate_percent': must be 0 (no A/B) to 99, got "
                             f"{self.ab_candidate_percent}")
        if not 1 <= self.data_capture_percent <= 100:
            raise ValueError(f"settings field 'aws.data_capture_percent': must be 1 to 100, got "
                             f"{self.data_capture_percent}")
        if self.data_capture_s3_uri and not self.data_capture_s3_uri.startswith("s3://"):
            raise ValueError(f"settings field 'aws.data_capture_s3_uri': must be an s3:// prefix, got "
                             f"{self.data_capture_s3_uri!r}")
        if bool(self.vpc_subnets) != bool(self.vpc_security_groups):
            raise ValueError("settings fields 'aws.vpc_subnets' and 'aws.vpc_security_groups' go together: "
                             "set both or neither")



SECTIONS: dict[str, type] = {"features": FeatureSettings, "splits": SplitSettings, "selection": SelectionSettings,
                             "training": TrainingSettings, "drift": DriftSettings, "aws": AwsSettings,
                             "registry": RegistrySettings}

# The sections each stage reads. A pipeline task gets only these (ingest hands them out), so a change
# elsewhere leaves its inputs and its cache key as they were.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "ingest": ("features",),
    "panel": ("features",),
    "extract": ("features",),
    "lag": ("features", "splits", "selection"),
    "select": ("features", "splits", "selection"),
    "tune": ("training", "aws"),
    "train": ("features", "splits", "training", "aws"),
    "drift": ("features", "splits", "drift", "aws", "registry"),  # registry: the A/B step's ab_* settings
    "deploy": ("aws", "registry"),
    "predict": ("features", "aws"),  # features as ingest checks the bars (each model brings its own); aws for
    # the sagemaker backend
}


class SectionNotGiven:
    """Stands for a section a stage was not given: reading any of its fields names the section."""

    def __init__(self, section: str, stage: str) -> None:
        self._section, self._stage = section, stage

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise LookupError(f"the {self._stage} stage reads settings field '{self._section}.{name}' but is not given "
                          f"the '{self._section}' section: add it to bqx.config.STAGE_SECTIONS['{self._stage}']")

    def __repr__(self) -> str:
        return f"<section {self._section!r} not given to {self._stage}>"


# flat field names of earlier releases -> their place now (so an old settings file gets a pointer, not a guess)
MOVED = {name: f"{section}.{name}" for section, cls in SECTIONS.items() if section in ("features", "splits")
         for name in (f.name for f in fields(cls))}
MOVED |= {"n_select": "selection.n_select", "min_idx": "selection.min_idx", "min_bqx": "selection.min_bqx",
          "selection_sample_rows": "selection.sample_rows", "seed": "selection.seed and training.seed",
          "walk_forward_folds": "training.walk_forward_folds", "eval_cost_bps": "training.eval_cost_bps",
          "train": "training"}
MOVED |= {f"drift_{f.name}": f"drift.{f.name}" for f in fields(DriftSettings)}


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on, one section per concern. Defaults follow docs/architecture.md."""

    features: FeatureSettings = field(default_factory=FeatureSettings)
    splits: SplitSettings = field(default_factory=SplitSettings)
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    aws: AwsSettings = field(default_factory=AwsSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)

    def given(self) -> tuple[str, ...]:
        """The sections this object holds (all of them, except in a stage given only its own)."""
        return tuple(s for s in SECTIONS if not isinstance(getattr(self, s), SectionNotGiven))

    def to_dict(self, sections: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The sections held (or the given ones) as plain JSON-able data."""
        return {s: dataclasses.asdict(getattr(self, s)) for s in sections or self.given()}

    def to_json(self, sections: tuple[str, ...] | None = None) -> str:
        return json.dumps(self.to_dict(sections), sort_keys=True, separators=(",", ":"))

    def stage_json(self, stage: str) -> str:
        """The JSON of the sections ``stage`` reads: what its pipeline task is given."""
        return self.to_json(STAGE_SECTIONS[stage])

    def settings_hash(self) -> str:
        """Short stable hash of the settings held; stored with every model for provenance."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> Settings:
        """A copy with whole sections or single fields changed: ``replace(features=...)`` or
        ``replace(n_select=150)`` (a field name found in exactly one section)."""
        sections = {k: v for k, v in changes.items() if k in SECTIONS}
        by_section: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            if name in SECTIONS:
                continue
            owners = [s for s, cls in SECTIONS.items() if name in {f.name for f in fields(cls)}]
            if len(owners) != 1:
                raise TypeError(f"Settings.replace: {name!r} is {'in no' if not owners else 'in more than one'} "
                                f"section; pass the section (e.g. selection=...)")
            by_section.setdefault(owners[0], {})[name] = value
        for section, values in by_section.items():
            sections[section] = dataclasses.replace(sections.get(section, getattr(self, section)), **values)
        return dataclasses.replace(self, **sections)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Settings from their JSON object; a missing section or field takes its default."""
        if not isinstance(data, dict):
            raise ValueError(f"settings must be a JSON object, got {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name not in SECTIONS:
                hint = (f"it is now '{MOVED[name]}'" if name in MOVED
                        else f"the sections are {', '.join(SECTIONS)}")
                raise ValueError(f"unknown settings field {name!r}: {hint}")
            if not isinstance(value, dict):
                raise ValueError(f"settings field {name!r}: must be an object, got {value!r}")
            known = {f.name for f in fields(SECTIONS[name])}
            bad = sorted(set(value) - known)
            if bad:
                raise ValueError(f"unknown settings field(s) in {name!r}: {', '.join(bad)} "
                                 f"(known: {', '.join(sorted(known))})")
            kwargs[name] = SECTIONS[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls.from_dict(json.loads(text) if text.strip() else {})

    @classmethod
    def for_stage(cls, text: str, stage: str) -> Settings:
        """A task's settings: the sections ``stage`` reads from ``text``; reading any other names it."""
        settings = cls.from_json(text)
        for section in SECTIONS:
            if section not in STAGE_SECTIONS[stage]:
                object.__setattr__(settings, section, SectionNotGiven(section, stage))
        return settings

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        """Settings from a JSON file; a bad file or field is one ValueError naming the file and the field."""
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ValueError(f"settings file {path}: cannot read it ({err.strerror})") from None
        try:
            return cls.from_json(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"settings file {path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        except (ValueError, TypeError) as err:
            raise ValueError(f"settings file {path}: {err}") from None


# Lower bounds of numeric fields (inclusive unless noted); every other int field must be >= 1.
_AT_LEAST_ZERO = {"ab_candidate_percent", "min_idx", "min_bqx", "eval_cost_bps", "early_stopping_rounds", "seed",
                  "threshold", "walk_forward_folds", "min_improvement", "tune_trials"}
_FRACTIONS = {"train_fraction", "val_fraction"}


def check_fields(obj: object, prefix: str) -> None:
    """Types and ranges of a settings dataclass's scalar and tuple fields: one ValueError naming the field."""
    for f in fields(obj):  # type: ignore[arg-type]
        value, name, kind = getattr(obj, f.name), prefix + f.name, str(f.type)
        if value is None and "None" in kind:
            continue
        if kind.startswith("tuple[int"):
            items = value if isinstance(value, tuple) else None
            if items is None or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
                raise ValueError(f"settings field {name!r}: must be a list of positive integers, got {value!r}")
            if f.name != "horizons" and len(set(items)) != len(items):
                raise ValueError(f"settings field {name!r}: lists a value twice ({value!r})")
            continue
        if kind.startswith("int"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"settings field {name!r}: must be an integer, got {value!r}")
            floor = 0 if f.name in _AT_LEAST_ZERO else 1
            if value < floor:
                raise ValueError(f"settings field {name!r}: must be {'>= 0' if floor == 0 else 'a positive integer'}"
                                 f", got {value}")
        elif kind.startswith("float"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise ValueError(f"settings field {name!r}: must be a number, got {value!r}")
            if f.name in _FRACTIONS and not 0 <= value <= 1:
                raise ValueError(f"settings field {name!r}: must be between 0 and 1, got {value}")
            if value < 0 or (value == 0 and f.name not in _AT_LEAST_ZERO | _FRACTIONS):
                raise ValueError(f"settings field {name!r}: must be positive, got {value}")
        elif kind.startswith("str") and not isinstance(value, str):
            raise ValueError(f"settings field {name!r}: must be a string, got {value!r}")
        elif kind.startswith("bool") and not isinstance(value, bool):
            raise ValueError(f"settings field {name!r}: must be true or false, got {value!r}")
        elif kind.startswith("tuple[str") and not (isinstance(value, tuple) and all(isinstance(v, str) and v
                                                                                      for v in value)):
            raise ValueError(f"settings field {name!r}: must be a list of non-empty strings, got {value!r}")
        elif kind.startswith("tuple[tuple[str, str]") and not (isinstance(value, tuple) and all(
                isinstance(t, tuple) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in value)):
            raise ValueError(f"settings field {name!r}: must be an object of strings, got {value!r}")


def interval_s(settings: Settings) -> int:
    """The bar spacing the computation uses: the stated or inferred one, 1 minute when neither is known."""
    return settings.features.bar_interval_s or 60


