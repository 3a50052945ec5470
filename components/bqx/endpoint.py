"""The multi-model endpoint as SageMaker requests and results: one definition for both cloud backends of
the deploy stage (``sagemaker`` sends them with boto3, ``ack`` as the ACK controller's custom resources).

Models are published under ``{prefix}/models/`` as ``{pair}-{sha12}.tar.gz`` with ``manifest.json``; the
Model and EndpointConfig names hash what they hold, so a change gives new names and an unchanged deploy
finds everything in place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bqx.artifacts import MANIFEST
from bqx.config import Settings
from bqx.model_package import sha256_of

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


def publish_models(s3: object, models: list[ModelRef], settings: Settings) -> tuple[dict, list[str]]:
    """Upload each model under ``{prefix}/models/`` as ``{pair}-{sha12}.tar.gz`` (skipped when that name is
    already there) and write ``manifest.json`` beside them if it changed; returns (manifest, uploaded)."""
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
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    got = found(lambda: s3.get_object(Bucket=a.bucket, Key=prefix + MANIFEST))  # type: ignore[attr-defined]
    if (got["Body"].read() if got else b"") != body:
        s3.put_object(Bucket=a.bucket, Key=prefix + MANIFEST, Body=body)  # type: ignore[attr-defined]
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
