"""The multi-model endpoint as SageMaker requests and results: one definition for both cloud backends of
the deploy stage (``sagemaker`` sends them with boto3, ``ack`` as the ACK controller's custom resources).

Models are published under ``{prefix}/models/`` as ``{pair}-{sha12}.tar.gz`` with ``manifest.json``; the
Model and EndpointConfig names hash what they hold, so a change gives new names and an unchanged deploy
finds everything in place.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bqx.artifacts import MANIFEST
from bqx.config import Settings
from bqx.model_package import sha256_of
from bqx.polling import poll

# what a manifest entry records of a model beside its file: provenance, and the registry version serving
MANIFEST_META = ("catalog_version", "settings_hash", "n_features", "registry_version")


@dataclass(frozen=True)
class ModelRef:
    """A trained model on its way to deployment: its package, and what the registry records with it."""

    pair: str
    tarball: Path
    meta: dict
    metrics: dict[str, float] = field(default_factory=dict)  # the train stage's test and walk-forward metrics
    card: str = ""  # the model card (Markdown)


@dataclass(frozen=True)
class EndpointDeploy:
    """What a SageMaker deploy did: the S3 manifest, the names it serves under and each change it made."""

    manifest: dict  # manifest.json under the models prefix
    model: str
    endpoint_config: str
    uploaded: list[str]
    created: list[str]
    updated: list[str]
    deleted: list[str] = field(default_factory=list)  # ack backend with aws.ack_keep false: resources let go
    held: str = ""  # why the new models did not go live (an A/B test awaits its verdict); "" when they did


VARIANT = "AllTraffic"


def _short_hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


NOT_FOUND = ("ValidationException", "ResourceNotFound", "404", "NoSuchKey", "NotFound")


def found(call: Callable[[], dict]) -> dict | None:
    """The response, or None when AWS says the resource does not exist."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in NOT_FOUND:
            return None
        raise


def exists(call: Callable[[], dict]) -> bool:
    return found(call) is not None


def data_capture_config(settings: Settings) -> dict | None:
    """SageMaker Data Capture of the endpoint's JSON requests and responses to ``aws.data_capture_s3_uri``
    (``aws.data_capture_percent`` of them), where the drift pipeline reads what was served; None = off."""
    a = settings.aws
    if not a.data_capture_s3_uri:
        return None
    return {"EnableCapture": True, "InitialSamplingPercentage": a.data_capture_percent,
            "DestinationS3Uri": a.data_capture_s3_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}


class DeployFailed(RuntimeError):
    """The endpoint did not come into service on the wanted config; the message has SageMaker's reason."""


def deployment_config(settings: Settings) -> dict:
    """UpdateEndpoint's blue/green policy: the new fleet takes all traffic after ``baking_s`` with it, the
    old fleet is kept as long again; the ``rollback_alarms`` firing meanwhile roll the update back."""
    a = settings.aws
    config: dict = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": a.baking_s},
        "TerminationWaitInSeconds": a.baking_s}}
    if a.rollback_alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in a.rollback_alarms]}
    return config


def read_manifest(s3: object, settings: Settings) -> dict | None:
    """The ``manifest.json`` under ``{prefix}/models/`` (what the endpoint serves), None before a first deploy."""
    a = settings.aws
    got = found(lambda: s3.get_object(Bucket=a.bucket, Key=f"{a.prefix}/models/{MANIFEST}"))  # type: ignore[attr-defined]
    return json.loads(got["Body"].read()) if got else None


def write_manifest(s3: object, manifest: dict, settings: Settings) -> bool:
    """Write ``manifest.json`` under the models prefix if it changed; True when it did."""
    a = settings.aws
    key = f"{a.prefix}/models/{MANIFEST}"
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    got = found(lambda: s3.get_object(Bucket=a.bucket, Key=key))  # type: ignore[attr-defined]
    if (got["Body"].read() if got else b"") == body:
        return False
    s3.put_object(Bucket=a.bucket, Key=key, Body=body)  # type: ignore[attr-defined]
    return True


def publish_models(s3: object, models: list[ModelRef], settings: Settings, write: bool = True
                   ) -> tuple[dict, list[str]]:
    """Upload each model under ``{prefix}/models/`` as ``{pair}-{sha12}.tar.gz`` (skipped when that name is
    already there) and, with ``write``, write ``manifest.json`` beside them if it changed; returns
    (manifest, uploaded)."""
    a = settings.aws
    prefix = f"{a.prefix}/models/"
    uploaded, entries = [], {}
    for ref in sorted(models, key=lambda r: r.pair):
        digest = sha256_of(ref.tarball)
        name = f"{ref.pair}-{digest[:12]}.tar.gz"
        if not exists(lambda key=prefix + name: s3.head_object(Bucket=a.bucket, Key=key)):  # type: ignore[attr-defined]
            s3.upload_file(str(ref.tarball), a.bucket, prefix + name,  # type: ignore[attr-defined]
                           ExtraArgs={"Metadata": {"sha256": digest}})
            uploaded.append(name)
        entries[ref.pair] = {"target_model": name, "sha256": digest,
                             **{k: ref.meta.get(k) for k in MANIFEST_META}}
    manifest = {"endpoint": a.endpoint_name, "models": entries}
    if write:
        write_manifest(s3, manifest, settings)
    return manifest, uploaded


def model_request(settings: Settings) -> dict:
    """CreateModel for the multi-model container over the models prefix; the name hashes what it serves."""
    from bqx.aws import tags

    a = settings.aws
    model_data = f"s3://{a.bucket}/{a.prefix}/models/"
    return {"ModelName": f"{a.endpoint_name}-{_short_hash(a.serve_image, model_data, a.role_arn)}",
            "ExecutionRoleArn": a.role_arn,
            "PrimaryContainer": {"Image": a.serve_image, "Mode": "MultiModel", "ModelDataUrl": model_data},
            "Tags": tags(settings, endpoint=a.endpoint_name)}


def endpoint_config_request(settings: Settings, model_name: str) -> dict:
    """CreateEndpointConfig: one variant of ``model_name`` (and data capture when set); the name hashes it."""
    from bqx.aws import tags

    a = settings.aws
    capture = data_capture_config(settings)
    name = f"{a.endpoint_name}-" + _short_hash(model_name, a.endpoint_instance_type, a.endpoint_instance_count,
                                              *([capture] if capture else []))
    return {"EndpointConfigName": name, "ProductionVariants": [{
        "VariantName": VARIANT, "ModelName": model_name, "InitialInstanceCount": a.endpoint_instance_count,
        "InstanceType": a.endpoint_instance_type}], "Tags": tags(settings, endpoint=a.endpoint_name),
        **({"DataCaptureConfig": capture} if capture else {})}


def endpoint_request(settings: Settings, config_name: str) -> dict:
    from bqx.aws import tags

    a = settings.aws
    return {"EndpointName": a.endpoint_name, "EndpointConfigName": config_name,
            "Tags": tags(settings, endpoint=a.endpoint_name)}


# ---- the endpoint's state: waiting on it, its autoscaling -------------------------------------------


def create_missing(sm: Any, kind: str, request: dict, created: list[str]) -> str:  # noqa: ANN401
    """Create the Model or EndpointConfig ``request`` describes unless one of its name exists; its name."""
    key, describe, create = {"model": ("ModelName", sm.describe_model, sm.create_model),
                             "endpoint-config": ("EndpointConfigName", sm.describe_endpoint_config,
                                                 sm.create_endpoint_config)}[kind]
    name = request[key]
    if not exists(lambda: describe(**{key: name})):
        create(**request)
        created.append(f"{kind}/{name}")
    return name


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


def variant_of(sm: object, config_name: str) -> tuple[str, int] | None:
    desc = found(lambda: sm.describe_endpoint_config(EndpointConfigName=config_name))  # type: ignore[attr-defined]
    if desc is None:
        return None
    v = desc["ProductionVariants"][0]
    return v.get("InstanceType", ""), int(v.get("InitialInstanceCount", 0))


def deregister_scaling(aas: object, settings: Settings) -> bool:
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


def ensure_scaling(aas: object, settings: Settings, fresh: bool = False) -> str:
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
