"""Compile the pipeline to KFP IR YAML (checked in under pipelines/; a test proves it is fresh)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_PATH = Path("pipelines") / "bqx_pipeline.yaml"
DRIFT_PATH = Path("pipelines") / "bqx_drift_pipeline.yaml"


def compile_pipeline(out: str | Path = DEFAULT_PATH, which: str = "train") -> Path:
    """Compile the training pipeline (``train``) or the recurring drift pipeline (``drift``)."""
    from kfp import compiler

    from bqx.pipeline import bqx_drift_pipeline, bqx_pipeline

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(bqx_pipeline if which == "train" else bqx_drift_pipeline, str(path))
    return path
