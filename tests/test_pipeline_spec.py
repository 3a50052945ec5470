"""The checked-in compiled pipeline is fresh, parses into the PipelineSpec proto, and its images exist."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from bqx.kubeflow.compile import compile_pipeline, load_compiled
from bqx.kubeflow.images import STAGES, TAG

ROOT = Path(__file__).resolve().parents[1]
COMPILED = ROOT / "pipelines" / "bqx_pipeline.yaml"
COMPILED_DRIFT = ROOT / "pipelines" / "bqx_drift_pipeline.yaml"
COMPILED_PREDICT = ROOT / "pipelines" / "bqx_predict_pipeline.yaml"


def test_compiled_yaml_is_fresh(tmp_path: Path):
    fresh = compile_pipeline(tmp_path / "p.yaml").read_text()
    assert COMPILED.read_text() == fresh, "pipelines/bqx_pipeline.yaml is stale: run `bqx compile`"
    drift = compile_pipeline(tmp_path / "d.yaml", "drift").read_text()
    assert COMPILED_DRIFT.read_text() == drift, "pipelines/bqx_drift_pipeline.yaml is stale: run `bqx compile`"
    predict = compile_pipeline(tmp_path / "b.yaml", "predict").read_text()
    assert COMPILED_PREDICT.read_text() == predict, "pipelines/bqx_predict_pipeline.yaml is stale: run `bqx compile`"


def test_predict_pipeline_ingests_then_predicts():
    doc, _ = load_compiled(COMPILED_PREDICT)
    spec = json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "bqx-predict"
    assert set(spec.root.dag.tasks) == {"ingest-bars", "predict-bars"}
    assert {"source", "model_repository", "pairs", "since"} <= set(spec.root.input_definitions.parameters)
    images = {e["container"]["image"] for e in spec.deployment_spec["executors"].values()}
    assert images == {f"ghcr.io/bqx-ml/bqx-{s}:{TAG}" for s in ("ingest", "predict")}


def test_drift_pipeline_parses_and_monitors_each_pair():
    doc, _ = load_compiled(COMPILED_DRIFT)
    spec = json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "bqx-drift"
    (loop,) = [t for name, t in spec.root.dag.tasks.items() if name.startswith("for-loop")]
    inner = spec.components[loop.component_ref.name].dag.tasks
    assert {"extract-features", "monitor-drift"} <= set(inner)
    assert "model_repository" in spec.root.input_definitions.parameters
    # with a prediction log, the A/B step runs once for the whole run
    (branch,) = [t for name, t in spec.root.dag.tasks.items() if name.startswith("condition")]
    assert "prediction_log" in branch.trigger_policy.condition
    assert set(spec.components[branch.component_ref.name].dag.tasks) == {"decide-ab"}


def test_compiled_yaml_parses_into_pipeline_spec():
    doc, _ = load_compiled(COMPILED)
    spec = json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "bqx-train"
    tasks = spec.root.dag.tasks
    assert {"ingest-bars", "deploy-models", "for-loop-1"} <= set(tasks)
    loop = tasks["for-loop-1"]
    assert loop.parameter_iterator.items.input_parameter  # ParallelFor over the pairs parameter
    inner = spec.components[loop.component_ref.name].dag.tasks
    assert {"extract-features", "lag-features", "select-features", "tune-model", "train-model",
            "drift-report"} <= set(inner)
    executors = spec.deployment_spec["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {f"ghcr.io/bqx-ml/bqx-{s}:{TAG}" for s in STAGES if s != "predict"}  # its own pipeline


def test_every_component_image_is_one_bqx_images_builds():
    from bqx.kubeflow.images import image
    from bqx.ship import image_plan

    text = COMPILED.read_text() + COMPILED_DRIFT.read_text() + COMPILED_PREDICT.read_text()
    built = {b.ref for b in image_plan(ROOT, image("ingest").rsplit("/", 1)[0], TAG) if b.shipped}
    used = set(re.findall(r"image: (\S+)", text))
    assert used and used <= built, used - built


def test_components_do_not_install_packages_at_run_time():
    assert "pip install" not in COMPILED.read_text()


def test_compile_time_registry_and_tag_set_every_image(tmp_path: Path):
    for which in ("train", "drift"):
        registry = "123.dkr.ecr.eu-west-1.amazonaws.com/ml"
        doc, platform = load_compiled(compile_pipeline(tmp_path / f"{which}.yaml", which, registry,
                                                       "2026.11.24-abc123"))
        assert platform is not None  # the tasks' security context survives the rewrite
        images = {e["container"]["image"] for e in doc["deploymentSpec"]["executors"].values()}
        assert images and all(i.startswith("123.dkr.ecr.eu-west-1.amazonaws.com/ml/bqx-") for i in images)
        assert all(i.endswith(":2026.11.24-abc123") for i in images)
        json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())  # still a valid spec


def _kfp_compile_check() -> Path | None:
    """The KFP backend's offline upload/run/compile check (shared/kfp-compile-check), where this checkout has
    it: BQX_KFP_COMPILE_CHECK, or shared/ beside the checkout."""
    beside = ROOT.parent / "shared" / "kfp-compile-check" / "check.sh"
    for candidate in (os.environ.get("BQX_KFP_COMPILE_CHECK"), beside, Path("/work/shared/kfp-compile-check/check.sh")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.mark.parametrize(("compiled", "params"), [
    ("bqx_pipeline.yaml", {"source": "s3://bucket/bars"}),
    ("bqx_drift_pipeline.yaml", {"source": "s3://bucket/bars", "model_repository": "s3://bucket/models"}),
    ("bqx_predict_pipeline.yaml", {"source": "s3://bucket/bars", "model_repository": "s3://bucket/models"}),
])
def test_the_kfp_backend_accepts_the_compiled_pipelines(compiled, params, tmp_path):
    """The API server's upload and run checks and its Go compiler (IR -> Argo Workflow), offline: what a
    cluster would accept, not just what the SDK writes (first use builds the checker, about a minute)."""
    check = _kfp_compile_check()
    if check is None:
        pytest.skip("the KFP backend check is not in this checkout (shared/kfp-compile-check/check.sh, or set "
                    "BQX_KFP_COMPILE_CHECK): the compiled YAML is checked by the SDK tests only")
    proc = subprocess.run(["bash", str(check), str(ROOT / "pipelines" / compiled), json.dumps(params)],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OUT": str(tmp_path / "wf.yaml")})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "upload: OK" in proc.stderr and "compile: OK" in proc.stderr
    workflow = yaml.safe_load((tmp_path / "wf.yaml").read_text())
    assert workflow["kind"] == "Workflow" and workflow["spec"]["templates"]


def _tasks(dag: dict, spec: dict) -> list[tuple[str, dict]]:
    """Every task of a pipeline, those inside the ParallelFor included: (name, task)."""
    out = []
    for name, task in dag.get("tasks", {}).items():
        comp = spec["components"][task["componentRef"]["name"]]
        if "dag" in comp:
            out += _tasks(comp["dag"], spec)
        else:
            out.append((name, task))
    return out


@pytest.mark.parametrize("compiled", [COMPILED, COMPILED_DRIFT])
def test_every_task_has_its_resources_from_the_plan_and_a_retry_policy(compiled):
    from bqx.config import Settings
    from bqx.plan import task_resources

    spec, platform = load_compiled(compiled)
    wanted = task_resources(Settings())
    tasks = _tasks(spec["root"]["dag"], spec)
    assert len(tasks) >= 4
    for name, task in tasks:
        executor = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        image = spec["deploymentSpec"]["executors"][executor]["container"]["image"]
        stage = image.rsplit("/bqx-", 1)[1].split(":")[0]  # a task has its image's stage's resources
        assert task["taskInfo"]["name"] in (stage, "ab-decide"), name  # the UI names each task by its stage
        assert task["retryPolicy"] == {"maxRetryCount": 2, "backoffDuration": "60s", "backoffFactor": 2.0,
                                       "backoffMaxDuration": "600s"}, name
        res = spec["deploymentSpec"]["executors"][executor]["container"]["resources"]
        assert res["resourceMemoryRequest"] == res["resourceMemoryLimit"] == wanted[stage].memory, name
        assert res["resourceCpuRequest"] == wanted[stage].cpu and "resourceCpuLimit" not in res, name
        # every task runs as the images' non-root user (kfp-kubernetes; KFP's driver drops capabilities too)
        context = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][executor]["securityContext"]
        assert context == {"runAsUser": "1000", "runAsGroup": "1000", "runAsNonRoot": True}, name


TASK_STAGE = {"build-panel": "panel", "extract-features": "extract", "lag-features": "lag",
              "select-features": "select", "tune-model": "tune", "train-model": "train", "drift-report": "drift",
              "deploy-models": "deploy", "monitor-drift": "drift"}


def _settings_sources(spec: pipeline_spec_pb2.PipelineSpec) -> dict[str, tuple[str, str]]:
    """Each stage task -> (producer task, output key) its ``settings_json`` comes from, through the loop."""
    found: dict[str, tuple[str, str]] = {}
    for name, task in spec.root.dag.tasks.items():
        if name.startswith("for-loop"):
            for inner_name, inner in spec.components[task.component_ref.name].dag.tasks.items():
                channel = inner.inputs.parameters["settings_json"].component_input_parameter
                src = task.inputs.parameters[channel].task_output_parameter
                found[inner_name] = (src.producer_task, src.output_parameter_key)
        elif name in TASK_STAGE:
            src = task.inputs.parameters["settings_json"].task_output_parameter
            found[name] = (src.producer_task, src.output_parameter_key)
    return found


@pytest.mark.parametrize("path", [COMPILED, COMPILED_DRIFT])
def test_each_stage_gets_only_its_settings_sections_from_ingest(path: Path):
    """Ingest takes the run's settings whole; every later task gets ingest's output for its own stage, so
    its KFP cache key holds only the sections that stage reads."""
    doc, _ = load_compiled(path)
    spec = json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())
    sources = _settings_sources(spec)
    assert set(sources) == {t for t in TASK_STAGE if t in sources} and "extract-features" in sources
    for task, (producer, key) in sources.items():
        assert (producer, key) == ("ingest-bars", TASK_STAGE[task]), task
    ingest = spec.root.dag.tasks["ingest-bars"].inputs.parameters["settings_json"]
    assert ingest.component_input_parameter == "settings_json"


def test_a_drift_setting_changes_the_inputs_of_the_drift_stage_only():
    from bqx.config import STAGE_SECTIONS, Settings

    base = Settings()
    changed = Settings.from_dict({"drift": {"critical_index": 2.0, "sns_topic_arn": "arn:aws:sns:us-east-1:1:t"}})
    for stage, sections in STAGE_SECTIONS.items():
        assert (base.stage_json(stage) != changed.stage_json(stage)) == ("drift" in sections), stage
    assert base.stage_json("extract") == changed.stage_json("extract")
    endpoint = base.replace(aws=type(base.aws)(endpoint_instance_count=3))
    assert endpoint.stage_json("extract") == base.stage_json("extract") != base.stage_json("deploy") != \
        endpoint.stage_json("deploy")


def test_resource_setters_keep_kfps_container_check_without_its_stack_walk():
    """bqx.kubeflow.pipelines swaps kfp's inspect.stack()-based check for the duration of its own resource
    setters only: same refusal, same message naming the setter; kfp's own check is back afterwards."""
    from kfp.dsl.pipeline_task import PipelineTask

    from bqx.kubeflow.pipelines import _container_check_without_stack

    original = PipelineTask._ensure_container_spec_exists

    class NoContainer:  # a task kfp would refuse: a pipeline used as a component, an importer
        container_spec = None

        def set_cpu_request(self) -> None:
            PipelineTask._ensure_container_spec_exists(self)  # type: ignore[arg-type]

    with _container_check_without_stack():
        assert PipelineTask._ensure_container_spec_exists is not original
        with pytest.raises(ValueError, match="^set_cpu_request can only be used on single-step components"):
            NoContainer().set_cpu_request()
    assert PipelineTask._ensure_container_spec_exists is original
    with pytest.raises(ValueError, match="^set_cpu_request can only be used on single-step components"):
        NoContainer().set_cpu_request()  # kfp's own check says the same
