"""ACK SageMaker custom resources, built from the requests the boto3 backends send.

The ACK controller's spec is SageMaker's API shape with lowerCamelCase field names and upper-cased
initialisms (``RoleArn`` -> ``roleARN``, ``S3Uri`` -> ``s3URI``, ``KmsKeyId`` -> ``kmsKeyID``), so each
object is the boto3 request (one definition in ``bqx.train.sagemaker`` / ``bqx.deploy``) renamed by
:func:`ack_spec`, plus metadata: a DNS-1123 name and the labels that tie it to bqx-ml, a run and a pair.
"""

from __future__ import annotations

import hashlib
import re

from bqx.config import Settings

GROUP = "sagemaker.services.k8s.aws"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# kind -> (plural, the spec field holding the SageMaker name)
KINDS: dict[str, tuple[str, str]] = {
    "TrainingJob": ("trainingjobs", "trainingJobName"),
    "Model": ("models", "modelName"),
    "EndpointConfig": ("endpointconfigs", "endpointConfigName"),
    "Endpoint": ("endpoints", "endpointName"),
    "HyperParameterTuningJob": ("hyperparametertuningjobs", "hyperParameterTuningJobName"),
}
MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_LABEL, PAIR_LABEL, ENDPOINT_LABEL = "bqx.ml/run", "bqx.ml/pair", "bqx.ml/endpoint"

# words ACK writes in capitals (a leading word is lower-cased whole: KmsKeyId -> kmsKeyID)
INITIALISMS = {"Arn": "ARN", "Uri": "URI", "Url": "URL", "Id": "ID", "Ids": "IDs", "Kms": "KMS", "Mb": "MB",
               "Gb": "GB", "Mime": "MIME", "Ssm": "SSM", "Ami": "AMI"}
# whole names ACK changes (a Go keyword as a field name)
RENAMED = {"Type": "type_"}
# fields whose value is a user map: its keys are data, never renamed
MAPS = {"HyperParameters", "StaticHyperParameters", "Environment"}
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z]+[0-9]*")


def ack_field(name: str) -> str:
    """A SageMaker API member name as the ACK CRD spells it."""
    if name in RENAMED:
        return RENAMED[name]
    words = _WORD.findall(name)
    if not words or "".join(words) != name:
        raise ValueError(f"cannot split SageMaker field name {name!r} into words")
    head, tail = words[0].lower(), [INITIALISMS.get(w, w) for w in words[1:]]
    return head + "".join(tail)


def ack_spec(value: object) -> object:
    """A boto3 request (or part of one) with every member renamed for the ACK spec."""
    if isinstance(value, dict):
        return {ack_field(k): (dict(v) if k in MAPS else ack_spec(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [ack_spec(v) for v in value]
    return value


def k8s_name(name: str) -> str:
    """A SageMaker name as a Kubernetes object name (DNS-1123: lower case, digits, '-', 63 at most here)."""
    out = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if out != name or len(out) > 63:
        out = f"{out[:52].rstrip('-')}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    return out


def label_value(value: str) -> str:
    """A string as a label value: 63 characters of [A-Za-z0-9._-], alphanumeric at both ends."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", value)[:63].strip("-._")
    return out or "none"


def labels(run: str, **own: str) -> dict[str, str]:
    """The owner labels: managed by bqx-ml, the run that made it (``BQX_RUN``, the KFP run's workflow),
    and the pair or endpoint it belongs to."""
    return {MANAGED_BY: "bqx-ml", "app.kubernetes.io/part-of": "bqx-ml", RUN_LABEL: label_value(run or "manual"),
            **{f"bqx.ml/{k}": label_value(v) for k, v in sorted(own.items())}}


def custom_resource(kind: str, request: dict, object_labels: dict[str, str], namespace: str = "") -> dict:
    """One ACK object from its boto3 request."""
    spec = ack_spec(request)
    assert isinstance(spec, dict)
    name = spec[KINDS[kind][1]]
    metadata: dict = {"name": k8s_name(name), "labels": dict(object_labels)}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def training_job(name: str, channel_uris: dict[str, str], hyperparameters: dict[str, str], settings: Settings,
                 pair: str, run: str, namespace: str = "") -> dict:
    """The TrainingJob: the sagemaker backend's CreateTrainingJob request as a custom resource."""
    from bqx.train.sagemaker import training_request

    request = training_request(name, channel_uris, hyperparameters, settings, pair)
    return custom_resource("TrainingJob", request, labels(run, pair=pair), namespace)


def tuning_job(name: str, channel_uris: dict[str, str], hyperparameters: dict[str, str], settings: Settings,
               pair: str, run: str, namespace: str = "") -> dict:
    """The HyperParameterTuningJob: the sagemaker tuning backend's request as a custom resource."""
    from bqx.tune.sagemaker import tuning_request

    request = tuning_request(name, channel_uris, hyperparameters, settings, pair)
    return custom_resource("HyperParameterTuningJob", request, labels(run, pair=pair), namespace)


def endpoint_objects(settings: Settings, run: str, namespace: str = "") -> list[dict]:
    """Model, EndpointConfig and Endpoint of the multi-model endpoint, as the sagemaker backend creates
    them; the Endpoint carries the blue/green deployment config that its updates use."""
    from bqx.endpoint import deployment_config, endpoint_config_request, endpoint_request, model_request

    own = labels(run, endpoint=settings.aws.endpoint_name)
    model = model_request(settings)
    config = endpoint_config_request(settings, model["ModelName"])
    endpoint = {**endpoint_request(settings, config["EndpointConfigName"]),
                "DeploymentConfig": deployment_config(settings)}
    return [custom_resource("Model", model, own, namespace), custom_resource("EndpointConfig", config, own, namespace),
            custom_resource("Endpoint", endpoint, own, namespace)]


def condition(obj: dict, kind: str) -> dict | None:
    """The ACK condition of that type (``ACK.ResourceSynced``, ``ACK.Terminal``, ``ACK.Recoverable``)."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def is_true(obj: dict, kind: str) -> bool:
    c = condition(obj, kind)
    return c is not None and c.get("status") == "True"
