"""Recompile the checked-in pipeline YAML: ``python pipelines/compile.py`` (same as ``bqx compile``).

The pipeline itself is defined in ``components/bqx/kubeflow/pipelines.py`` so the installed ``bqx`` command can
run it; this directory holds its compiled KFP IR, which tests/test_pipeline_spec.py keeps fresh.
"""

from pathlib import Path

from bqx.kubeflow.compile import DRIFT_PATH, compile_pipeline

if __name__ == "__main__":
    print(f"wrote {compile_pipeline(Path(__file__).with_name('bqx_pipeline.yaml'))}")
    print(f"wrote {compile_pipeline(Path(__file__).with_name(DRIFT_PATH.name), 'drift')}")
