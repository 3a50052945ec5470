"""Every kustomize overlay renders (kubectl kustomize, offline) into the objects GitOps needs."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bqx.cli import build_parser
from bqx.config import Settings
from bqx.kubeflow.compile import load_compiled
from bqx.kubeflow.manifests import PIPELINES, pipeline_objects, write_pipeline_objects
from bqx.kubeflow.schedule import params_from, typed_params
from bqx.pairs import PAIRS

ROOT = Path(__file__).resolve().parents[1]
OVERLAYS = {"dev": ("bqx-dev", "111111111111"), "prod": ("bqx-prod", "222222222222")}


def render(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "kustomize", str(ROOT / "manifests" / "overlays" / overlay)], check=True,
                         capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_pipeline_objects_are_current(tmp_path):
    fresh = write_pipeline_objects(tmp_path / "pipelines.yaml", ROOT)
    assert fresh.read_text() == (ROOT / "manifests" / "base" / "pipelines.yaml").read_text(), \
        "manifests/base/pipelines.yaml is stale: run `bqx manifests`"
    assert (tmp_path / "versions.env").read_text() == (ROOT / "manifests" / "base" / "versions.env").read_text()


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_objects(overlay):
    namespace, account = OVERLAYS[overlay]
    objs = render(overlay)
    kinds = {(o["apiVersion"], o["kind"]) for o in objs}
    kfp_api = "pipelines.kubeflow.org/v2beta1"
    assert {("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "Role"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("v1", "ConfigMap"), ("batch/v1", "CronJob"),
            (kfp_api, "Pipeline"), (kfp_api, "PipelineVersion")} == kinds
    assert all(o["metadata"]["namespace"] == namespace for o in objs)
    assert not [o for o in objs if o["kind"] == "Secret"]
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    sa = by[("ServiceAccount", "bqx-pipelines")]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(f"arn:aws:iam::{account}:role/")

    # each PipelineVersion embeds the current compiled spec, under the name the CronJob will use
    expected = {o["metadata"]["name"]: o for o in pipeline_objects(ROOT) if o["kind"] == "PipelineVersion"}
    versions = [o for o in objs if o["kind"] == "PipelineVersion"]
    assert {v["metadata"]["name"] for v in versions} == set(expected)
    for v in versions:
        compiled = ROOT / PIPELINES[v["spec"]["pipelineName"]]
        spec, platform = load_compiled(compiled)
        assert v["spec"]["pipelineSpec"] == spec and v["spec"]["platformSpec"] == platform

    # each reconcile container's command, its env expanded from the rendered ConfigMaps, is a valid `bqx schedule`
    # that sets every parameter of its pipeline, typed by the compiled spec, for a run in this namespace under
    # the IRSA service account
    cron = by[("CronJob", "bqx-reconcile-recurring-run")]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "bqx-pipelines" and pod["securityContext"]["runAsNonRoot"]
    settings_map = next(o for o in objs if o["metadata"]["name"] == pod["volumes"][0]["configMap"]["name"])
    Settings.from_json(settings_map["data"]["settings.json"])  # the mounted settings are valid
    scheduled = {}
    for container in pod["containers"]:
        env = {}
        for ref in container["envFrom"]:
            env.update(next(o for o in objs if o["metadata"]["name"] == ref["configMapRef"]["name"])["data"])
        args = [re.sub(r"\$\((\w+)\)", lambda m, env=env: env[m.group(1)], a) for a in container["args"]]
        parsed = build_parser().parse_args(args)
        assert container["command"] == ["bqx"] and parsed.command == "schedule"
        assert parsed.service_account == "bqx-pipelines" and parsed.namespace == namespace
        assert parsed.version == next(n for n, o in expected.items() if o["spec"]["pipelineName"] == parsed.pipeline)
        assert len(parsed.cron.split()) == 6
        spec, _ = load_compiled(ROOT / PIPELINES[parsed.pipeline])
        given = params_from(parsed.settings.replace("/etc/bqx/settings.json", str(ROOT / "manifests" / "overlays"
                                                                                   / overlay / "settings.json")),
                            parsed.source, parsed.param)
        typed = typed_params(spec, given)  # known names, the right types, nothing required left out
        assert set(typed) == set(spec["root"]["inputDefinitions"]["parameters"])  # every parameter set from git
        assert typed["source"].startswith("s3://") and set(typed["pairs"]) <= set(PAIRS)
        scheduled[parsed.pipeline] = typed
    assert set(scheduled) == {"bqx-train", "bqx-drift"}  # the drift pipeline has its recurring run too
    assert scheduled["bqx-drift"]["model_repository"].startswith("s3://")
    token = next(v for v in pod["volumes"] if v["name"] == "kfp-token")["projected"]["sources"][0]
    assert token["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"
    backend = "sagemaker" if overlay == "prod" else "local"
    assert scheduled["bqx-train"]["train_backend"] == scheduled["bqx-train"]["deploy_backend"] == backend


def _pod_specs(obj: dict) -> list[dict]:
    """Every pod spec an object carries (a Pod, a workload's template, a CronJob's job template)."""
    spec = obj.get("spec", {})
    if obj["kind"] == "Pod":
        return [spec]
    if "jobTemplate" in spec:
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    return [spec["template"]["spec"]] if "template" in spec else []


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlays_pass_strict_kubernetes_schemas_and_pods_are_locked_down(overlay):
    """Built-in kinds against the real Kubernetes schemas (unknown fields refused) of the oldest and newest
    supported releases; every pod non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp,
    read-only root file system."""
    import kubernetes_validate

    objs = render(overlay)
    builtin = [o for o in objs if not o["apiVersion"].startswith("pipelines.kubeflow.org/")]
    for version in ("1.30.0", "1.37.0"):
        for obj in builtin:
            kubernetes_validate.validate(obj, version, strict=True)
    pods = [pod for o in objs for pod in _pod_specs(o)]
    assert pods
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
            assert sc["readOnlyRootFilesystem"] is True and "add" not in sc["capabilities"]
            writable = {m["mountPath"] for m in container.get("volumeMounts", []) if not m.get("readOnly")}
            assert "/tmp" in writable  # the one place the stage writes (HOME points there)
