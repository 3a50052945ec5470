"""An in-memory stand-in of the KFP v2beta1 REST API on 127.0.0.1, for the submit and schedule paths.

It implements the routes the kfp Client calls for them (healthz, pipelines and their uploads,
versions, experiments, runs, recurring runs), including the display_name EQUALS filter the client
sends, and records every request. Responses follow the v2beta1 JSON field names so the real
kfp_server_api models deserialise them.
"""

from __future__ import annotations

import itertools
import json
import threading
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

API = "/apis/v2beta1"


class KfpState:
    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.specs: dict[str, dict] = {}  # version id -> the uploaded pipeline spec
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.authorization: list[str] = []  # each request's Authorization header ("" without one)

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self.ids)}"


def _filtered(items: list[dict], query: dict) -> list[dict]:
    raw = query.get("filter", [""])[0]
    if not raw:
        return items
    for p in json.loads(raw).get("predicates", []):
        if p.get("operation") in ("EQUALS", 1) and p.get("key") in ("display_name", "name"):
            value = p.get("stringValue", p.get("string_value"))  # the client sends the proto JSON name
            items = [i for i in items if i.get("display_name") == value]
    return items


def make_handler(state: KfpState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _upload(self) -> dict:
            """The pipeline spec from the multipart field ``uploadfile``."""
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = BytesParser(policy=default).parsebytes(head + self._body())
            for part in message.iter_parts():
                if part.get_param("name", header="content-disposition") == "uploadfile":
                    # the PipelineSpec; a second document is the platform spec (the API keeps it apart)
                    return next(d for d in yaml.safe_load_all(part.get_payload(decode=True)) if d)
            raise ValueError("no uploadfile field")

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            q = parse_qs(url.query)
            path = url.path.removeprefix(API)
            state.requests.append((method, path))
            state.authorization.append(self.headers.get("Authorization", ""))
            parts = [p for p in path.split("/") if p]
            if parts == ["healthz"]:
                return self._send(200, {"multi_user": False})
            if parts == ["pipelines"] and method == "GET":
                found = _filtered(list(state.pipelines.values()), q)
                return self._send(200, {"pipelines": found, "total_size": len(found)})
            if parts == ["pipelines", "upload"] and method == "POST":
                spec = self._upload()
                name = q.get("name", q.get("display_name", [spec["pipelineInfo"]["name"]]))[0]
                if any(p["display_name"] == name for p in state.pipelines.values()):
                    return self._send(409, {"error": f"pipeline {name} exists"})
                pid = state.new_id("pipeline")
                state.pipelines[pid] = {"pipeline_id": pid, "display_name": name}
                vid = state.new_id("version")
                state.versions[vid] = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": name}
                state.specs[vid] = spec
                return self._send(200, state.pipelines[pid])
            if parts == ["pipelines", "upload_version"] and method == "POST":
                spec = self._upload()
                pid, name = q["pipelineid"][0], q["name"][0]
                if pid not in state.pipelines:
                    return self._send(404, {"error": f"no pipeline {pid}"})
                vid = state.new_id("version")
                state.versions[vid] = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": name}
                state.specs[vid] = spec
                return self._send(200, state.versions[vid])
            if len(parts) == 3 and parts[0] == "pipelines" and parts[2] == "versions" and method == "GET":
                found = [{**v, "pipeline_spec": state.specs[v["pipeline_version_id"]]}  # as the API returns them
                         for v in state.versions.values() if v["pipeline_id"] == parts[1]]
                return self._send(200, {"pipeline_versions": found, "total_size": len(found)})
            if parts == ["experiments"] and method == "GET":
                found = _filtered(list(state.experiments.values()), q)
                return self._send(200, {"experiments": found, "total_size": len(found)})
            if parts == ["experiments"] and method == "POST":
                body = json.loads(self._body())
                eid = state.new_id("experiment")
                state.experiments[eid] = {"experiment_id": eid, "display_name": body["display_name"]}
                return self._send(200, state.experiments[eid])
            if parts == ["runs"] and method == "POST":
                body = json.loads(self._body())
                rid = state.new_id("run")
                state.runs[rid] = {**body, "run_id": rid, "state": "PENDING"}
                return self._send(200, state.runs[rid])
            if len(parts) == 2 and parts[0] == "runs" and method == "GET" and parts[1] in state.runs:
                return self._send(200, state.runs[parts[1]])
            if parts == ["recurringruns"] and method == "GET":
                exp = q.get("experiment_id", [None])[0]
                found = [r for r in state.recurring.values() if exp is None or r.get("experiment_id") == exp]
                # the one camelCase list key of the API (ListRecurringRunsResponse.recurringRuns)
                return self._send(200, {"recurringRuns": found, "total_size": len(found)})
            if parts == ["recurringruns"] and method == "POST":
                body = json.loads(self._body())
                rid = state.new_id("recurring")
                state.recurring[rid] = {**body, "recurring_run_id": rid, "status": "ENABLED"}
                return self._send(200, state.recurring[rid])
            if len(parts) == 2 and parts[0] == "recurringruns" and method == "DELETE":
                if state.recurring.pop(parts[1], None) is None:
                    return self._send(404, {"error": f"no recurring run {parts[1]}"})
                return self._send(200, {})
            return self._send(404, {"error": f"stand-in has no route {method} {path}"})

        def do_GET(self) -> None:  # noqa: N802
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._route("DELETE")

    return Handler


class KfpStandIn:
    def __init__(self) -> None:
        self.state = KfpState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KfpStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
