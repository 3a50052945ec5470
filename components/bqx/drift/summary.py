"""The drift stage's typed result: per-domain status and per-feature scores, and its JSON form.

``run_drift`` returns one; the training-run and monitoring entries add the pair, the alert and (when
monitoring) what the fresh data was; the component writes ``to_json()`` as the stage's summary artifact."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class FeatureDrift:
    domain: str
    score: float  # distance over the calibrated threshold; > 1 is drift; NaN if unscored (constant column)
    location: float
    scale: float
    location_threshold: float
    scale_threshold: float
    drift: bool


@dataclass(frozen=True)
class DomainDrift:
    title: str
    features: int
    scored: int
    index: float  # mean score of the scored features
    drifted: int
    share: float  # drifted / features
    status: str  # ok, warning or critical
    drifted_features: list[str]  # most drifted first


@dataclass(frozen=True)
class DriftSummary:
    reference_rows: int
    current_rows: int
    calibration: dict[str, int]  # windows, window_rows, stride
    domains: dict[str, DomainDrift]
    features: dict[str, FeatureDrift]
    pair: str = ""
    alert_message_id: str | None = None
    fresh: dict[str, object] = field(default_factory=dict)  # monitoring: fresh_rows, predictions, model_catalog

    def critical(self) -> dict[str, DomainDrift]:
        return {d: v for d, v in self.domains.items() if v.status == "critical"}

    def with_run(self, pair: str, alert_message_id: str | None, **fresh: object) -> DriftSummary:
        return replace(self, pair=pair, alert_message_id=alert_message_id, fresh=dict(fresh))

    def to_json(self) -> dict:
        out = asdict(self)
        out.update(out.pop("fresh"))
        return out

    def line(self) -> str:
        """The one-line progress text."""
        return ", ".join(f"{d.title} index {d.index:.2f} ({d.status})" for d in self.domains.values())


__all__ = ["DomainDrift", "DriftSummary", "FeatureDrift"]
