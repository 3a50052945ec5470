"""The deploy stage: a local model repository, and S3 + a SageMaker multi-model endpoint (boto3 or ACK).

Local backend: a model repository laid out like a multi-model endpoint's prefix.

``{repo}/{pair}.tar.gz`` for every pair (the TargetModel names a multi-model endpoint would use) and
``manifest.json`` (pair -> file, sha256, bytes, catalog version, settings hash, metrics). Deploying the
same models again changes nothing; files are replaced atomically.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bqx.artifacts import MANIFEST
from bqx.config import Settings
from bqx.endpoint import (
    MANIFEST_META,
    VARIANT,
    DeployFailed,
    EndpointDeploy,
    ModelRef,
    deployment_config,
    endpoint_config_request,
    endpoint_request,
    exists,
    found,
    model_request,
    publish_models,
)
from bqx.io import atomic_path, read_json, write_json
from bqx.model_package import sha256_of
from bqx.polling import poll
from bqx.registry.promote import Served, open_registry, promote


@dataclass(frozen=True)
class Repository:
    """The local model repository after a deploy: its manifest's entries and the pairs whose file changed."""

    models: dict[str, dict]  # pair -> manifest.json entry (target_model, sha256, bytes, catalog_version, ...)
    changed: list[str]


@dataclass(frozen=True)
class DeploySummary:
    repository: Repository
    endpoint: EndpointDeploy | None  # None on the local backend
    failed: dict[str, str]  # pair -> why it has no model to deploy
    served: list[Served] = field(default_factory=list)  # per trained pair: its registered version, what serves

    @property
    def not_served(self) -> dict[str, str]:
        """Pairs that trained but have no approved version, and why."""
        return {s.pair: s.why for s in self.served if s.serving is None}


def deploy_local(models: list[ModelRef], repo: str | Path) -> Repository:
    """Copy each pair's model.tar.gz into the repository and write the manifest."""
    repo = Path(repo)
    repo.mkdir(parents=True, exist_ok=True)
    manifest_path = repo / MANIFEST
    old = read_json(manifest_path) if manifest_path.exists() else {"models": {}}
    entries: dict[str, dict] = dict(old.get("models", {}))
    changed = []
    for ref in sorted(models, key=lambda r: r.pair):
        digest = sha256_of(ref.tarball)
        name = f"{ref.pair}.tar.gz"
        target = repo / name
        if not (target.exists() and entries.get(ref.pair, {}).get("sha256") == digest):
            with atomic_path(target) as tmp:
                shutil.copyfile(ref.tarball, tmp)
            changed.append(ref.pair)
        entries[ref.pair] = {"target_model": name, "sha256": digest, "bytes": target.stat().st_size,
                             **{k: ref.meta.get(k) for k in MANIFEST_META}}
    manifest = {"models": dict(sorted(entries.items())), "changed": changed}
    if old.get("models") != manifest["models"] or changed or not manifest_path.exists():
        write_json(manifest, manifest_path)
    return Repository(manifest["models"], changed)


# ---- SageMaker multi-model endpoint ------------------------------------------------------------------


def endpoint_action(current_config: str | None, wanted_config: str) -> str:
    """create (no endpoint), update (blue/green to a new config) or none."""
    if current_config is None:
        return "create"
    return "none" if current_config == wanted_config else "update"


WAITING = {"Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"}


def wait_endpoint(sm: object, name: str, config_name: str, poll_s: float, timeout_s: float,
                  sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll until the endpoint is InService on ``config_name``; DeployFailed with the reason if it fails,
    is rolled back to another config, or takes longer than ``timeout_s``."""

    def in_service(desc: dict) -> bool:
        status = desc["EndpointStatus"]
        if status == "InService" and desc["EndpointConfigName"] != config_name:
            why = desc.get("FailureReason", "an alarm fired during the baking period")
            raise DeployFailed(f"endpoint {name} is in service on {desc['EndpointConfigName']}, not "
                               f"{config_name}: the update was rolled back ({why})")
        if status != "InService" and status not in WAITING:
            raise DeployFailed(f"endpoint {name} is {status}: {desc.get('FailureReason', 'no reason given')}")
        return status == "InService"

    return poll(lambda: sm.describe_endpoint(EndpointName=name), in_service,  # type: ignore[attr-defined]
                lambda desc: DeployFailed(f"endpoint {name} still {desc['EndpointStatus']} after {timeout_s:.0f} s "
                                          "(aws.endpoint_timeout_s)"), poll_s, timeout_s, sleep)


def _variant(sm: object, config_name: str) -> tuple[str, int] | None:
    desc = found(lambda: sm.describe_endpoint_config(EndpointConfigName=config_name))  # type: ignore[attr-defined]
    if desc is None:
        return None
    v = desc["ProductionVariants"][0]
    return v.get("InstanceType", ""), int(v.get("InitialInstanceCount", 0))


def _deregister_scaling(aas: object, settings: Settings) -> bool:
    """Remove the variant's scalable target (its policies go with it); False when there is none."""
    resource = f"endpoint/{settings.aws.endpoint_name}/variant/{VARIANT}"
    dim = "sagemaker:variant:DesiredInstanceCount"
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource],  # type: ignore[attr-defined]
                                            ScalableDimension=dim)["ScalableTargets"]
    if not targets:
        return False
    aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,  # type: ignore[attr-defined]
                                   ScalableDimension=dim)
    return True


def deploy_sagemaker(models: list[ModelRef], settings: Settings, sleep: Callable[[float], None] = time.sleep
                     ) -> EndpointDeploy:
    """Publish the models under one S3 prefix and serve them from one multi-model endpoint.

    Target models are versioned (``{pair}-{sha12}.tar.gz``) because a multi-model endpoint caches what
    it loaded: a changed model gets a new name, and ``manifest.json`` under the prefix maps pairs to
    names. The Model, EndpointConfig and scaling are created only when missing or changed; an existing
    endpoint moves to a new config with UpdateEndpoint (SageMaker's blue/green). Running it twice with
    the same models changes nothing."""
    from bqx.aws import client, require

    require(settings, "bucket", "role_arn", "serve_image")
    a = settings.aws
    s3, sm, aas = client("s3", settings), client("sagemaker", settings), client("application-autoscaling", settings)
    manifest, uploaded = publish_models(s3, models, settings)
    done: dict[str, list[str]] = {"uploaded": uploaded, "created": [], "updated": []}
    model = model_request(settings)
    model_name = model["ModelName"]
    if not exists(lambda: sm.describe_model(ModelName=model_name)):
        sm.create_model(**model)
        done["created"].append(f"model/{model_name}")
    config = endpoint_config_request(settings, model_name)
    config_name = config["EndpointConfigName"]
    if not exists(lambda: sm.describe_endpoint_config(EndpointConfigName=config_name)):
        sm.create_endpoint_config(**config)
        done["created"].append(f"endpoint-config/{config_name}")
    endpoint = found(lambda: sm.describe_endpoint(EndpointName=a.endpoint_name))
    action = endpoint_action(endpoint["EndpointConfigName"] if endpoint else None, config_name)
    released = False
    if action == "create":
        sm.create_endpoint(**endpoint_request(settings, config_name))
        done["created"].append(f"endpoint/{a.endpoint_name}")
    elif action == "update":
        assert endpoint is not None
        # AWS refuses UpdateEndpoint while a scalable target pins the variant and the instance type or
        # count changes: let go of the target now, register it again once the endpoint is in service
        if _variant(sm, endpoint["EndpointConfigName"]) != (a.endpoint_instance_type, a.endpoint_instance_count):
            released = _deregister_scaling(aas, settings)
            if released:
                done["updated"].append("scaling/deregistered")
        sm.update_endpoint(EndpointName=a.endpoint_name, EndpointConfigName=config_name,
                           DeploymentConfig=deployment_config(settings))
        done["updated"].append(f"endpoint/{a.endpoint_name}")
    wait_endpoint(sm, a.endpoint_name, config_name, a.poll_s, a.endpoint_timeout_s, sleep)
    scaling = _ensure_scaling(aas, settings, fresh=released)
    if scaling:
        done["created" if scaling == "target+policy" else "updated"].append(f"scaling/{scaling}")
    return EndpointDeploy(manifest, model_name, config_name, **done)


BACKENDS = ("local", "sagemaker", "ack")


def run(models: list[ModelRef], backend: str, settings: Settings, repo: str | Path,
        failed: dict[str, str] | None = None, run_label: str = "") -> DeploySummary:
    """The deploy stage: register every model and let the gate choose what serves each pair
    (``bqx.registry``), then the local repository always (every backend keeps it) and the endpoint
    through boto3 (``sagemaker``) or the ACK controller's resources (``ack``, labelled ``run_label``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown deploy backend {backend!r} ({', '.join(BACKENDS)})")
    with tempfile.TemporaryDirectory(prefix="bqx-deploy-") as work:
        served = promote(models, open_registry(backend, settings, repo), settings, Path(work))
        refs = [s.ref for s in served if s.ref is not None]
        repository = deploy_local(refs, repo)
        endpoint = None
        if backend == "sagemaker":
            endpoint = deploy_sagemaker(refs, settings)
        elif backend == "ack":
            from bqx.ack.deploy import deploy_ack

            endpoint = deploy_ack(refs, settings, run_label)
    return DeploySummary(repository, endpoint, dict(failed or {}), served)


def _ensure_scaling(aas: object, settings: Settings, fresh: bool = False) -> str:
    """Register the variant's scalable target and target-tracking policy if missing or different (both
    anew when ``fresh``: deregistering a target deletes its policies)."""
    a = settings.aws
    resource = f"endpoint/{a.endpoint_name}/variant/{VARIANT}"
    dim = "sagemaker:variant:DesiredInstanceCount"
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource],  # type: ignore[attr-defined]
                                            ScalableDimension=dim)["ScalableTargets"]
    changed = ""
    if not targets or (targets[0]["MinCapacity"], targets[0]["MaxCapacity"]) != (a.autoscale_min, a.autoscale_max):
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dim,  # type: ignore[attr-defined]
                                     MinCapacity=a.autoscale_min, MaxCapacity=a.autoscale_max)
        changed = "target"
    policy = f"{a.endpoint_name}-invocations"
    config = {"TargetValue": a.autoscale_invocations_per_instance,
              "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
    found = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource,  # type: ignore[attr-defined]
                                          ScalableDimension=dim, PolicyNames=[policy])["ScalingPolicies"]
    current = found[0].get("TargetTrackingScalingPolicyConfiguration", {}).get("TargetValue") if found else None
    if fresh or current != config["TargetValue"]:
        aas.put_scaling_policy(PolicyName=policy, ServiceNamespace="sagemaker", ResourceId=resource,  # type: ignore[attr-defined]
                               ScalableDimension=dim, PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration=config)
        changed = (changed + "+policy") if changed else "policy"
    return changed
