"""Compile the pipeline to KFP IR YAML (checked in under pipelines/; a test proves it is fresh)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_PATH = Path("pipelines") / "bqx_pipeline.yaml"


def compile_pipeline(out: str | Path = DEFAULT_PATH) -> Path:
    from kfp import compiler

    from bqx.pipeline import bqx_pipeline

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(bqx_pipeline, str(path))
    return path
