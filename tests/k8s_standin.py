"""A small Kubernetes API stand-in on 127.0.0.1 for the ACK SageMaker custom resources.

It serves the custom-objects routes the official client calls (create, get, list with label selectors,
JSON merge patch, delete) for the kinds whose CRDs it is given, refuses what a real API server with strict
field validation refuses (a body that breaks the CRD's schema or has unknown fields: 422 Invalid; a name
that is not DNS-1123; an existing name: 409 AlreadyExists; 404 NotFound), answers with Kubernetes
``Status`` bodies, and keeps resourceVersion and generation. It does not reconcile anything itself: a test
plays the ACK controller's part by registering a function per kind that moves an object's status each
time the object is read (``controllers``), so what the controller would write is spelled out in the test.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from bqx.ack.resources import GROUP, KINDS, VERSION
from bqx.ack.schema import problems

ROOT = Path(__file__).resolve().parents[1]
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def crd_folder() -> Path:
    """The ACK SageMaker CRDs (shared/ack-sagemaker-crds beside the checkout, or BQX_ACK_CRDS); the test
    that needs them skips with this reason when they are not on the machine."""
    for candidate in (os.environ.get("BQX_ACK_CRDS"), ROOT.parent / "shared" / "ack-sagemaker-crds",
                      Path("/work/shared/ack-sagemaker-crds")):
        if candidate and (Path(candidate) / "trainingjobs.yaml").is_file():
            return Path(candidate)
    pytest.skip("the ACK SageMaker CRDs are not on this machine (shared/ack-sagemaker-crds beside the checkout, "
                "or set BQX_ACK_CRDS): the custom resources cannot be validated against the real schemas")


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class KubeStandin:
    def __init__(self, schemas: dict[str, dict]) -> None:
        self.schemas = schemas
        self.plurals = {plural: kind for kind, (plural, _) in KINDS.items() if kind in schemas}
        self.objects: dict[tuple[str, str, str], dict] = {}  # (plural, namespace, name) -> object
        self.controllers: dict[str, Callable[[dict], None]] = {}  # kind -> moves obj["status"] on each read
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        self.lock = threading.Lock()
        self._versions = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path: Path, namespace: str = "ml") -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "standin",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "bqx", "user": {"token": "standin-token"}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "bqx",
                                                          "namespace": namespace}}]}))
        return path

    def of_kind(self, kind: str) -> list[dict]:
        plural = KINDS[kind][0]
        return [o for (p, _, _), o in sorted(self.objects.items()) if p == plural]

    # ---- the API --------------------------------------------------------------------------------------

    def _status(self, code: int, reason: str, message: str) -> tuple[int, dict]:
        return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code}

    def _invalid(self, kind: str, name: str, errors: list[str]) -> tuple[int, dict]:
        return self._status(422, "Invalid", f'{kind}.{GROUP} "{name}" is invalid: ' + "; ".join(errors))

    def _check(self, obj: dict, kind: str) -> list[str]:
        errors = problems(obj, self.schemas)
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        if not DNS1123.match(name) or len(name) > 253:
            errors.append(f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of "
                          "lower case alphanumeric characters, '-' or '.'")
        for key, value in (meta.get("labels") or {}).items():
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                errors.append(f"metadata.labels: Invalid value: {value!r} (label {key})")
        if obj.get("apiVersion") != f"{GROUP}/{VERSION}" or obj.get("kind") != kind:
            errors.append(f"apiVersion/kind: expected {GROUP}/{VERSION} {kind}")
        return errors

    def handle(self, method: str, path: str, query: dict, body: dict | None, content_type: str) -> tuple[int, dict]:
        self.requests.append((method, path, content_type))
        m = re.fullmatch(rf"/apis/{re.escape(GROUP)}/{VERSION}/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?", path)
        if not m or m.group(2) not in self.plurals:
            return self._status(404, "NotFound", f"the server could not find the requested resource ({path})")
        namespace, plural, name = m.groups()
        kind = self.plurals[plural]
        key = (plural, namespace, name or "")
        with self.lock:
            if method == "POST" and name is None:
                assert body is not None
                name = str((body.get("metadata") or {}).get("name", ""))
                errors = self._check(body, kind)
                if errors:
                    return self._invalid(kind, name, errors)
                if (plural, namespace, name) in self.objects:
                    return self._status(409, "AlreadyExists", f'{plural}.{GROUP} "{name}" already exists')
                obj = copy.deepcopy(body)
                obj["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), generation=1,
                                       resourceVersion=str(next(self._versions)),
                                       creationTimestamp="2026-12-02T00:00:00Z")
                obj.pop("status", None)  # status is a subresource: create ignores it
                self.objects[(plural, namespace, name)] = obj
                return 201, obj
            if method == "GET" and name is None:
                wanted = dict(s.split("=", 1) for s in query.get("labelSelector", [""])[0].split(",") if s)
                items = [o for (p, ns, _), o in sorted(self.objects.items()) if p == plural and ns == namespace
                         and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
                return 200, {"apiVersion": f"{GROUP}/{VERSION}", "kind": f"{kind}List", "items": items,
                             "metadata": {"resourceVersion": str(next(self._versions))}}
            if key not in self.objects:
                return self._status(404, "NotFound", f'{plural}.{GROUP} "{name}" not found')
            obj = self.objects[key]
            if method == "GET":
                if kind in self.controllers:
                    before = json.dumps(obj.get("status"), sort_keys=True)
                    self.controllers[kind](obj)
                    if json.dumps(obj.get("status"), sort_keys=True) != before:
                        obj["metadata"]["resourceVersion"] = str(next(self._versions))
                return 200, obj
            if method == "PATCH":
                if content_type != "application/merge-patch+json":
                    return self._status(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")
                patched = merge_patch(obj, body)
                assert isinstance(patched, dict)
                patched["status"] = obj.get("status")  # the main resource ignores status changes
                check = {k: v for k, v in patched.items() if k != "status"}
                errors = self._check(check, kind)
                if errors:
                    return self._invalid(kind, name, errors)
                if patched["spec"] != obj["spec"]:
                    patched["metadata"]["generation"] = obj["metadata"]["generation"] + 1
                patched["metadata"]["resourceVersion"] = str(next(self._versions))
                if patched.get("status") is None:
                    patched.pop("status")
                self.objects[key] = patched
                return 200, patched
            if method == "DELETE":
                del self.objects[key]
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": name, "group": GROUP, "kind": plural}}
        return self._status(405, "MethodNotAllowed", f"{method} is not allowed on {path}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = (self.headers.get("Content-Type") or "").split(";")[0]
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    code, out = standin._status(400, "BadRequest", "the body is not JSON")
                else:
                    code, out = standin.handle(self.command, url.path, parse_qs(url.query), body, content_type)
                data = json.dumps(out).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        return Handler


def conditions(synced: bool, terminal: str = "", recoverable: str = "") -> list[dict]:
    """ACK's status conditions as the controller writes them."""
    out = [{"type": "ACK.ResourceSynced", "status": "True" if synced else "False",
            "lastTransitionTime": "2026-12-02T00:00:00Z"}]
    if terminal:
        out.append({"type": "ACK.Terminal", "status": "True", "message": terminal})
    if recoverable:
        out.append({"type": "ACK.Recoverable", "status": "True", "message": recoverable})
    return out
