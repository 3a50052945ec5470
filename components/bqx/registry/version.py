"""A registered version's record, and what every registry offers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from bqx.endpoint import ModelRef
from bqx.registry.gate import Decision


@dataclass(frozen=True)
class Version:
    pair: str
    version: int  # 1, 2, ... per pair, in registration order
    sha256: str  # of model.tar.gz: the same model is the same version
    status: str  # Approved, Rejected or PendingManualApproval
    reason: str  # the gate's (or the approver's) words
    location: str  # the package: a path in a local registry, an s3:// URI in SageMaker's
    metrics: dict[str, float]
    created: str  # UTC, ISO 8601

    @property
    def name(self) -> str:
        return f"{self.pair} v{self.version}"

    def to_dict(self) -> dict:
        return asdict(self)


class Registry(Protocol):
    def register(self, ref: ModelRef, decision: Decision) -> tuple[Version, bool]:
        """The version of this model, registered now (True) or found by its sha256 (False)."""
        ...

    def approved(self, pair: str) -> Version | None:
        """The pair's newest approved version."""
        ...

    def fetch(self, version: Version, dest: Path) -> Path:
        """The version's model.tar.gz at ``dest``."""
        ...

    def set_status(self, pair: str, version: int, status: str, reason: str) -> Version:
        ...

    def versions(self, pair: str) -> list[Version]:
        ...
