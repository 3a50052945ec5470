"""Container image references of the stage images (one per KFP stage, built from images/)."""

from __future__ import annotations

from bqx import __version__

REGISTRY = "ghcr.io/bqx-ml"
TAG = __version__
STAGES: tuple[str, ...] = ("ingest", "panel", "extract", "lag", "select", "tune", "train", "deploy", "drift",
                           "predict")
# Every image `bqx images` builds: the pipeline stages plus the inference container (not a pipeline step).
IMAGES: tuple[str, ...] = (*STAGES, "serve")


def image(stage: str, registry: str = REGISTRY, tag: str = TAG) -> str:
    if stage not in IMAGES:
        raise ValueError(f"no image for stage {stage!r}")
    return f"{registry}/bqx-{stage}:{tag}"
