"""The Kubernetes API for ACK custom resources: get, create, patch, delete, and wait on their status.

Connection: in a pod the service account's in-cluster config, otherwise ``aws.ack_kubeconfig`` or the
usual kubeconfig (``$KUBECONFIG``, ``~/.kube/config``). Every refusal becomes one :class:`AckError` line
naming the verb, the object, the namespace and the API server's reason.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bqx.ack.resources import GROUP, KINDS, VERSION, condition, is_true
from bqx.config import Settings
from bqx.polling import poll

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class AckError(RuntimeError):
    """The Kubernetes API refused a call (``status`` is its HTTP code), or an ACK resource failed or did not
    settle in time."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Kube:
    api: Any  # kubernetes.client.CustomObjectsApi
    namespace: str
    host: str

    def _call(self, verb: str, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:  # noqa: ANN401
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(group=GROUP, version=VERSION, namespace=self.namespace, **kwargs)
        except ApiException as err:
            raise AckError(f"{verb} {what} in namespace {self.namespace}: {err.status} {err.reason}: "
                           f"{_message(err.body)}", err.status) from None
        except HTTPError as err:
            raise AckError(f"{verb} {what}: cannot reach the Kubernetes API at {self.host} ({err})") from None

    def get(self, kind: str, name: str) -> dict | None:
        """The object, or None when there is none of that name."""
        try:
            return self._call("get", f"{kind}/{name}", self.api.get_namespaced_custom_object,
                              plural=KINDS[kind][0], name=name)
        except AckError as err:
            if err.status == 404:
                return None
            raise

    def create(self, obj: dict) -> dict:
        kind, name = obj["kind"], obj["metadata"]["name"]
        return self._call("create", f"{kind}/{name}", self.api.create_namespaced_custom_object,
                          plural=KINDS[kind][0], body=obj)

    def patch(self, kind: str, name: str, body: dict) -> dict:
        """A JSON merge patch (the spec fields given replace those on the object)."""
        return self._call("patch", f"{kind}/{name}", self.api.patch_namespaced_custom_object,
                          plural=KINDS[kind][0], name=name, body=body)

    def delete(self, kind: str, name: str) -> bool:
        """Delete the object (the ACK controller then deletes the SageMaker resource); False if absent."""
        try:
            self._call("delete", f"{kind}/{name}", self.api.delete_namespaced_custom_object,
                       plural=KINDS[kind][0], name=name)
        except AckError as err:
            if err.status == 404:
                return False
            raise
        return True

    def list(self, kind: str, selector: str) -> list[dict]:
        got = self._call("list", f"{KINDS[kind][0]} ({selector})", self.api.list_namespaced_custom_object,
                         plural=KINDS[kind][0], label_selector=selector)
        return list(got.get("items", []))


def _message(body: object) -> str:
    """The ``message`` of a Kubernetes Status body, else the body itself (shortened)."""
    try:
        return str(json.loads(body)["message"])  # type: ignore[arg-type]
    except (TypeError, ValueError, KeyError):
        return str(body)[:300]


def connect(settings: Settings) -> Kube:
    """A client for the namespace the ack backends use (``aws.ack_namespace``, else the pod's or the
    kubeconfig context's, else ``default``)."""
    from kubernetes import client, config

    a = settings.aws
    namespace = a.ack_namespace
    try:
        if not a.ack_kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            api_client = client.ApiClient()
            if not namespace and SA_NAMESPACE.is_file():
                namespace = SA_NAMESPACE.read_text().strip()
        else:
            path = a.ack_kubeconfig or None
            api_client = config.new_client_from_config(config_file=path)
            if not namespace:
                _, active = config.list_kube_config_contexts(config_file=path)
                namespace = (active or {}).get("context", {}).get("namespace", "")
    except (config.ConfigException, OSError) as err:
        raise AckError(f"no Kubernetes configuration for the ack backend (aws.ack_kubeconfig="
                       f"{a.ack_kubeconfig!r}, not in a pod): {err}") from None
    return Kube(client.CustomObjectsApi(api_client), namespace or "default", api_client.configuration.host)


def wait(kube: Kube, kind: str, name: str, ready: Callable[[dict], bool], poll_s: float, timeout_s: float,
         setting: str, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll the object until ``ready(obj)`` (which raises for a failure it recognises); an ``ACK.Terminal``
    condition fails at once with the controller's message; after ``timeout_s`` the error says what the
    object last reported."""

    def state() -> dict:
        obj = kube.get(kind, name)
        if obj is None:
            raise AckError(f"{kind}/{name} in namespace {kube.namespace} was deleted while bqx waited for it")
        return obj

    def settled(obj: dict) -> bool:
        terminal = condition(obj, "ACK.Terminal")
        if terminal is not None and terminal.get("status") == "True":
            raise AckError(f"{kind}/{name}: the ACK controller gave up (ACK.Terminal): "
                           f"{terminal.get('message') or terminal.get('reason') or 'no message'}")
        return ready(obj)

    return poll(state, settled, lambda obj: AckError(f"{kind}/{name} not ready after {timeout_s:.0f} s ({setting}); "
                                                     f"it reports {describe(obj)}"), poll_s, timeout_s, sleep)


# where each kind keeps its SageMaker status
STATUS_FIELDS = ("trainingJobStatus", "hyperParameterTuningJobStatus", "endpointStatus")


def describe(obj: dict) -> str:
    """The status in one phrase: the SageMaker status, whether ACK has synced it, a recoverable error."""
    status = obj.get("status") or {}
    phase = next((status[f] for f in STATUS_FIELDS if status.get(f)), "no SageMaker status yet")
    parts = [str(phase), "synced" if is_true(obj, "ACK.ResourceSynced") else "not synced"]
    recoverable = condition(obj, "ACK.Recoverable")
    if recoverable is not None and recoverable.get("status") == "True":
        parts.append(f"recoverable error: {recoverable.get('message', '')}")
    if not status:
        parts.append("no status at all: is the ACK SageMaker controller running and watching this namespace?")
    return ", ".join(parts)
