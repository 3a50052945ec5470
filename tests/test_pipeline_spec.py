"""The checked-in compiled pipeline is fresh, parses into the PipelineSpec proto, and its images exist."""

import re
from pathlib import Path

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from bqx.compile import compile_pipeline
from bqx.images import STAGES, TAG

ROOT = Path(__file__).resolve().parents[1]
COMPILED = ROOT / "pipelines" / "bqx_pipeline.yaml"
COMPILED_DRIFT = ROOT / "pipelines" / "bqx_drift_pipeline.yaml"


def test_compiled_yaml_is_fresh(tmp_path: Path):
    fresh = compile_pipeline(tmp_path / "p.yaml").read_text()
    assert COMPILED.read_text() == fresh, "pipelines/bqx_pipeline.yaml is stale: run `bqx compile`"
    drift = compile_pipeline(tmp_path / "d.yaml", "drift").read_text()
    assert COMPILED_DRIFT.read_text() == drift, "pipelines/bqx_drift_pipeline.yaml is stale: run `bqx compile`"


def test_drift_pipeline_parses_and_monitors_each_pair():
    doc = yaml.safe_load(COMPILED_DRIFT.read_text())
    spec = json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "bqx-drift"
    loop = spec.root.dag.tasks["for-loop-1"]
    inner = spec.components[loop.component_ref.name].dag.tasks
    assert {"extract-features", "monitor-drift"} <= set(inner)
    assert "model_repository" in spec.root.input_definitions.parameters


def test_compiled_yaml_parses_into_pipeline_spec():
    doc = yaml.safe_load(COMPILED.read_text())
    spec = json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "bqx-train"
    tasks = spec.root.dag.tasks
    assert {"ingest-bars", "deploy-models", "for-loop-1"} <= set(tasks)
    loop = tasks["for-loop-1"]
    assert loop.parameter_iterator.items.input_parameter  # ParallelFor over the pairs parameter
    inner = spec.components[loop.component_ref.name].dag.tasks
    assert {"extract-features", "lag-features", "select-features", "train-model", "drift-report"} <= set(inner)
    executors = spec.deployment_spec["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {f"ghcr.io/bqx-ml/bqx-{s}:{TAG}" for s in STAGES}


def test_every_component_image_is_one_bqx_images_builds():
    from bqx.images import image
    from bqx.ship import image_plan

    text = COMPILED.read_text() + COMPILED_DRIFT.read_text()
    built = {b.ref for b in image_plan(ROOT, image("ingest").rsplit("/", 1)[0], TAG) if b.shipped}
    used = set(re.findall(r"image: (\S+)", text))
    assert used and used <= built, used - built


def test_components_do_not_install_packages_at_run_time():
    assert "pip install" not in COMPILED.read_text()


def test_compile_time_registry_and_tag_set_every_image(tmp_path: Path):
    for which in ("train", "drift"):
        registry = "123.dkr.ecr.eu-west-1.amazonaws.com/ml"
        doc = yaml.safe_load(compile_pipeline(tmp_path / f"{which}.yaml", which, registry, "2026.11.24-abc123")
                             .read_text())
        images = {e["container"]["image"] for e in doc["deploymentSpec"]["executors"].values()}
        assert images and all(i.startswith("123.dkr.ecr.eu-west-1.amazonaws.com/ml/bqx-") for i in images)
        assert all(i.endswith(":2026.11.24-abc123") for i in images)
        json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())  # still a valid spec
