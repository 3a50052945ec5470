"""The ack deploy backend: the multi-model endpoint as ACK ``Model``, ``EndpointConfig`` and ``Endpoint``
resources.

The models are published to S3 exactly as on the sagemaker backend; the three objects are that
backend's requests. Model and EndpointConfig names hash what they hold, so a change makes new ones; the
Endpoint is created once and later patched to the new config (SageMaker's blue/green update with the
endpoint's deployment config). The deploy waits until ACK reports the endpoint InService and synced,
after it has seen the change being worked on, and fails with SageMaker's reason otherwise. With
``aws.ack_keep`` false, Model and EndpointConfig resources of this endpoint that it no longer uses are
deleted afterwards. Autoscaling is not managed on this backend (that is the applicationautoscaling
ACK controller's ScalableTarget and ScalingPolicy).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bqx.ack.kube import AckError, Kube, connect, wait
from bqx.ack.resources import ENDPOINT_LABEL, MANAGED_BY, endpoint_objects, is_true, label_value
from bqx.aws import client, require
from bqx.config import Settings
from bqx.endpoint import DeployFailed, EndpointDeploy, ModelRef, publish_models


def synced(obj: dict) -> bool:
    return is_true(obj, "ACK.ResourceSynced")


class EndpointReady:
    """The endpoint's readiness after a change: InService and synced, once the controller has been seen
    working on the change (status not InService, or not synced), so a status from before the change
    is never taken for its result. Failed or OutOfService raise with SageMaker's reason."""

    def __init__(self, changed: bool) -> None:
        self.seen_change = not changed

    def __call__(self, obj: dict) -> bool:
        status = obj.get("status") or {}
        phase = status.get("endpointStatus")
        if phase in ("Failed", "OutOfService"):
            raise DeployFailed(f"endpoint {obj['spec']['endpointName']} is {phase}: "
                               f"{status.get('failureReason', 'no reason given')}")
        if phase != "InService" or not synced(obj):
            self.seen_change = True
            return False
        return self.seen_change


def _ensure(kube: Kube, obj: dict, done: dict[str, list[str]], label: str) -> None:
    if kube.get(obj["kind"], obj["metadata"]["name"]) is None:
        kube.create(obj)
        done["created"].append(f"{label}/{obj['metadata']['name']}")


def deploy_ack(models: list[ModelRef], settings: Settings, run: str = "",
               sleep: Callable[[float], None] = time.sleep) -> EndpointDeploy:
    require(settings, "bucket", "role_arn", "serve_image")
    a = settings.aws
    if a.ab_candidate_percent:
        raise DeployFailed("settings field 'aws.ab_candidate_percent': A/B tests run on the sagemaker deploy backend "
                           "only; set it to 0 for the ack backend")
    manifest, uploaded = publish_models(client("s3", settings), models, settings)
    done: dict[str, list[str]] = {"uploaded": uploaded, "created": [], "updated": [], "deleted": []}
    model, config, endpoint = endpoint_objects(settings, run)
    try:
        kube = connect(settings)
        for obj, label in ((model, "model"), (config, "endpoint-config")):
            _ensure(kube, obj, done, label)
            wait(kube, obj["kind"], obj["metadata"]["name"], synced, a.poll_s, a.endpoint_timeout_s,
                 "aws.endpoint_timeout_s", sleep)
        name, config_name = endpoint["metadata"]["name"], config["spec"]["endpointConfigName"]
        current = kube.get("Endpoint", name)
        changed = True
        if current is None:
            kube.create(endpoint)
            done["created"].append(f"endpoint/{a.endpoint_name}")
        elif current["spec"].get("endpointConfigName") != config_name:
            kube.patch("Endpoint", name, {"spec": {"endpointConfigName": config_name,
                                                   "deploymentConfig": endpoint["spec"]["deploymentConfig"]}})
            done["updated"].append(f"endpoint/{a.endpoint_name}")
        else:
            changed = False
        wait(kube, "Endpoint", name, EndpointReady(changed), a.poll_s, a.endpoint_timeout_s,
             "aws.endpoint_timeout_s", sleep)
        if not a.ack_keep:
            done["deleted"] = prune(kube, settings, keep={model["metadata"]["name"], config["metadata"]["name"]})
    except AckError as err:
        raise DeployFailed(str(err)) from None
    return EndpointDeploy(manifest, model["spec"]["modelName"], config_name, **done)


def prune(kube: Kube, settings: Settings, keep: set[str]) -> list[str]:
    """Delete this endpoint's Model and EndpointConfig resources other than ``keep`` (ones bqx made)."""
    selector = f"{MANAGED_BY}=bqx-ml,{ENDPOINT_LABEL}={label_value(settings.aws.endpoint_name)}"
    deleted = []
    for kind, label in (("EndpointConfig", "endpoint-config"), ("Model", "model")):
        for obj in kube.list(kind, selector):
            name = obj["metadata"]["name"]
            if name not in keep and kube.delete(kind, name):
                deleted.append(f"{label}/{name}")
    return deleted

