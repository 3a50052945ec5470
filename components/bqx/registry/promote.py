"""Which version serves each pair: the new model when the gate approves it, else the pair's newest
approved version, else none. Every trained model is registered first, whatever the gate says."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bqx.artifacts import META
from bqx.config import Settings
from bqx.endpoint import ModelRef
from bqx.model_package import unpacked
from bqx.registry.gate import APPROVED, decide
from bqx.registry.version import Registry, Version


@dataclass(frozen=True)
class Served:
    pair: str
    candidate: Version  # this run's model as registered
    serving: Version | None  # what serves the pair after this deploy (None: nothing approved yet)
    ref: ModelRef | None  # the package to deploy for it

    @property
    def why(self) -> str:
        c = self.candidate
        if self.serving is None:
            return f"nothing serves: {c.name} is {c.status} ({c.reason}) and no earlier version is approved"
        if self.serving.version == c.version:
            return f"{c.name} ({c.status.lower()}: {c.reason})"
        return f"{self.serving.name} kept: {c.name} is {c.status} ({c.reason})"


def open_registry(backend: str, settings: Settings, repo: str | Path) -> Registry:
    """SageMaker's Model Registry for the cloud backends; a directory (``registry.uri``, else inside the
    repository) for the local one."""
    if backend in ("sagemaker", "ack"):
        from bqx.registry.sagemaker import SageMakerRegistry

        return SageMakerRegistry(settings)
    from bqx.registry.local import LocalRegistry

    return LocalRegistry(settings.registry.uri or Path(repo) / "registry")


def promote(models: list[ModelRef], registry: Registry, settings: Settings, workdir: Path | None = None
            ) -> list[Served]:
    """Register every model with the gate's decision and choose what serves each pair."""
    out = []
    work = Path(workdir or tempfile.mkdtemp(prefix="bqx-registry-"))
    for ref in sorted(models, key=lambda r: r.pair):
        candidate, _ = registry.register(ref, decide(ref.metrics, settings.registry))
        serving = candidate if candidate.status == APPROVED else registry.approved(ref.pair)
        chosen = None
        if serving is not None and serving.sha256 == candidate.sha256:
            chosen = ModelRef(ref.pair, ref.tarball, {**ref.meta, "registry_version": serving.version},
                              ref.metrics, ref.card)
        elif serving is not None:  # an earlier version: its package, and the meta.json inside it
            tarball = registry.fetch(serving, work / ref.pair / f"v{serving.version}.tar.gz")
            with unpacked(tarball) as d:
                meta = json.loads((d / META).read_text())
            chosen = ModelRef(ref.pair, tarball, {**meta, "registry_version": serving.version}, serving.metrics)
        out.append(Served(ref.pair, candidate, serving, chosen))
    return out
