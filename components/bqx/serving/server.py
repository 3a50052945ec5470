"""``bqx serve``: the inference container's HTTP server (SageMaker single- and multi-model contracts).

Routes (JSON in and out; invocations also take CSV rows, as Batch Transform sends them, and answer CSV
for ``Accept: text/csv``):

    GET    /ping                       health: 200 once the server accepts requests
    POST   /invocations                invoke the single model (/opt/ml/model, or the only one loaded)
    GET    /models                     list loaded models (?next_page_token=&max_results=)
    POST   /models                     load {"model_name": ..., "url": ...}; 409 if loaded, 507 if too big
    GET    /models/<name>              describe one loaded model
    DELETE /models/<name>              unload it
    POST   /models/<name>/invoke       invoke it

Errors are JSON ``{"error": ...}`` with a 4xx status that names the problem; a 500 is a bug.
Loads are confined by :class:`~bqx.serving.sources.LoadPolicy` (model root or s3://); with a token
configured, every ``/models`` route but invoke needs ``Authorization: Bearer <token>``.
:class:`App` holds the logic without HTTP so it is tested directly; :func:`serve` wraps it in a
threading HTTP/1.1 server (keep-alive, one thread per connection).
"""

from __future__ import annotations

import gc
import hmac
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd

from bqx.artifacts import MODEL_CBM
from bqx.serving.config import SINGLE_MODEL_DIR, ServeConfig
from bqx.serving.models import ModelStore, ServedModel, predict
from bqx.serving.payload import (
    CSV,
    PayloadError,
    Raw,
    WarmingUp,
    csv_matrix,
    csv_reply,
    media_type,
    parse_json,
    request_rows,
    rows_matrix,
    wants_csv,
)
from bqx.serving.prediction_log import PredictionLog
from bqx.serving.respond import SignalRule, response
from bqx.serving.sources import LoadPolicy

DEFAULT_MODEL = "default"
MAX_PAGE = 1000
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,256}")  # SageMaker's model names are opaque; no control characters


def settle() -> None:
    """Collect, then move what survives (modules, models, kernels: ~90k objects) out of the cycle
    collector's view: a full collection over them stalls every request for ~22 ms, which was the
    whole p99.9 at 1,000 req/s. Called after start-up, loads and the online engine's first use; freed
    objects still go by reference counting."""
    gc.collect()
    gc.freeze()


def _json_body(body: bytes) -> dict[str, Any]:
    return parse_json(body, "application/json")


class App:
    """Routing and invocation logic, independent of the HTTP transport."""

    def __init__(self, config: ServeConfig, store: ModelStore | None = None) -> None:
        self.config = config
        self.store = store or ModelStore(config.effective_budget())
        self.log = PredictionLog(config.log_dir) if config.log_dir else None
        self._rules: dict[str, SignalRule] = {}
        self._online = None  # bqx.serving.online.OnlineRegistry, created on the first raw-bars request
        self._online_lock = threading.Lock()
        self.policy = LoadPolicy(config.load_root())

    # -- model management --------------------------------------------------------------------------
    def preload(self) -> list[str]:
        """Load /opt/ml/model (single-model endpoint) and every model under ``config.models``."""
        loaded = []
        if Path(SINGLE_MODEL_DIR, MODEL_CBM).exists():
            self.store.load(DEFAULT_MODEL, SINGLE_MODEL_DIR)
            loaded.append(DEFAULT_MODEL)
        if self.config.models:
            root = Path(self.config.models)
            for item in sorted(root.iterdir()) if root.is_dir() else []:
                name = item.name.removesuffix(".tar.gz").removesuffix(".tgz")
                if (item.is_dir() and (item / MODEL_CBM).exists()) or item.name.endswith((".tar.gz", ".tgz")):
                    self.store.load(name, str(item))
                    loaded.append(name)
        return loaded

    def _rule(self, model: ServedModel) -> SignalRule:
        key = f"{model.name}@{model.version}"
        if key not in self._rules:
            self._rules[key] = SignalRule.for_model(model.loaded.selection, self.config.signal_threshold)
        return self._rules[key]

    # -- invocation ----------------------------------------------------------------------------------
    def invoke(self, name: str, body: bytes, content_type: str | None, accept: str | None = None) -> dict | Raw:
        model = self.store.get(name)
        ts: list[pd.Timestamp] | None
        if media_type(content_type) == CSV:
            matrix, ts = csv_matrix(body, model.features), None
        else:
            obj = parse_json(body, content_type)
            rows = request_rows(obj)
            if rows is None:
                matrix, ts = self._online_rows(model, obj)
            else:
                matrix = rows_matrix(rows, model.features)
                ts = _row_times(obj, len(rows))
        preds = predict(model, matrix)
        if self.log is not None:
            when = ts if ts is not None else [pd.Timestamp.now(tz="UTC")] * len(preds)
            self.log.append(when, model.pair, preds.tolist(), model.name, model.version, self.config.variant)
        if wants_csv(accept):
            return csv_reply(preds)
        ts_text = [t.isoformat() for t in ts] if ts is not None else None
        return response(preds, self._rule(model), model.loaded.meta, model.version, model.name, ts_text,
                        self.config.variant)

    def _invoke(self, name: str, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, dict | Raw]:
        try:
            return 200, self.invoke(name, body, content_type, accept)
        except WarmingUp as warming:
            return 202, warming.body

    def _online_rows(self, model: ServedModel, obj: dict) -> tuple[np.ndarray, list[pd.Timestamp]]:
        from bqx.serving.online import OnlineRegistry

        with self._online_lock:
            if self._online is None:
                self._online = OnlineRegistry()
                settle()
        return self._online.features_for(model, obj["bars"])

    def single_model_name(self, target: str | None) -> str:
        names = self.store.names()
        if target and target in names:
            return target
        if DEFAULT_MODEL in names:
            return DEFAULT_MODEL
        if len(names) == 1:
            return names[0]
        raise PayloadError(404, "POST /invocations needs one model: none or several are loaded "
                                f"({len(names)}); use POST /models/<name>/invoke")

    # -- routing -------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict | Raw]:
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.split("/") if p]
        ctype = headers.get("content-type")
        if parts == ["ping"] and method in ("GET", "HEAD"):
            return 200, {"status": "healthy", "models": len(self.store.names())}
        if parts == ["invocations"] and method == "POST":
            name = self.single_model_name(headers.get("x-amzn-sagemaker-target-model"))
            return self._invoke(name, body, ctype, headers.get("accept"))
        if parts[:1] == ["models"]:
            if not (len(parts) == 3 and parts[2] == "invoke"):
                self._authorize(headers)
            if len(parts) == 1 and method == "GET":
                q = parse_qs(url.query)
                try:
                    size = int(q.get("max_results", [str(MAX_PAGE)])[0])
                except ValueError:
                    raise PayloadError(400, "max_results must be an integer") from None
                if not 1 <= size <= MAX_PAGE:
                    raise PayloadError(400, f"max_results must be between 1 and {MAX_PAGE}")
                return 200, self.store.page(q.get("next_page_token", [None])[0], size)
            if len(parts) == 1 and method == "POST":
                obj = _json_body(body)
                name, path = obj.get("model_name"), obj.get("url")
                if not isinstance(name, str) or not isinstance(path, str) or not path or not _NAME.fullmatch(name):
                    raise PayloadError(400, "load needs {\"model_name\": <1-256 printable characters>, \"url\": "
                                            "<path under the model root or s3:// URL>}")
                model = self.store.load(name, self.policy.check(path))
                settle()
                return 200, {"status": f"model {name!r} loaded", **model.describe()}
            if len(parts) == 2 and method == "GET":
                return 200, self.store.describe(parts[1])
            if len(parts) == 2 and method == "DELETE":
                self.store.unload(parts[1])
                return 200, {"status": f"model {parts[1]!r} unloaded"}
            if len(parts) == 3 and parts[2] == "invoke" and method == "POST":
                return self._invoke(parts[1], body, ctype, headers.get("accept"))
        known = parts in (["ping"], ["invocations"]) or (parts[:1] == ["models"] and len(parts) <= 3)
        if known:
            raise PayloadError(405, f"{method} is not allowed on {url.path}")
        raise PayloadError(404, f"no route {method} {url.path}")

    def _authorize(self, headers: dict[str, str]) -> None:
        token = self.config.auth_token
        if not token:
            return
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8", "replace"),
                                                                   token.encode()):
            raise PayloadError(401, "the /models management routes need 'Authorization: Bearer <token>'",
                               {"WWW-Authenticate": 'Bearer realm="bqx-serve"'})

    def close(self) -> None:
        if self.log is not None:
            self.log.flush()


def _row_times(obj: dict, n: int) -> list[pd.Timestamp] | None:
    """Optional top-level ``ts_utc``: one time for all rows or a list with one per row."""
    if "ts_utc" not in obj:
        return None
    raw = obj["ts_utc"]
    values = raw if isinstance(raw, list) else [raw] * n
    if len(values) != n:
        raise PayloadError(400, f"'ts_utc' has {len(values)} value(s) for {n} row(s)")
    try:
        return [_utc(v) for v in values]
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(400, f"'ts_utc': not a time ({exc})") from None


def _utc(value: Any) -> pd.Timestamp:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    t = pd.Timestamp(value)
    if t is pd.NaT:
        raise ValueError(f"{value!r}")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on any write
    server_version = "bqx-serve"
    timeout = 60  # seconds a connection may sit idle or trickle a request before its thread lets it go
    app: App  # set on the subclass made by make_server

    def _dispatch(self) -> None:
        status: int
        payload: dict | Raw
        extra: dict[str, str] = {}
        try:
            length = self.headers.get("Content-Length")
            if length is None and self.command in ("POST", "PUT"):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raise PayloadError(411, "chunked bodies are not supported: send Content-Length")
                body = b""
            else:
                try:
                    n = int(length or 0)
                except ValueError:
                    raise PayloadError(400, f"bad Content-Length {length!r}") from None
                if n < 0 or n > 64 * 1024 * 1024:
                    raise PayloadError(413, f"Content-Length {n} is out of range")
                body = self.rfile.read(n)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = self.app.handle(self.command, self.path, headers, body)
        except PayloadError as exc:
            status, payload, extra = exc.status, {"error": exc.message}, exc.headers
        except Exception as exc:  # a bug: say so, keep serving
            status, payload = 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
            print(f"[bqx serve] 500 on {self.command} {self.path}: {exc!r}", file=sys.stderr)
        if isinstance(payload, Raw):
            data, media = payload.body, payload.content_type
        else:
            data, media = json.dumps(payload, allow_nan=False, default=str).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        # end_headers() would send the head and the body in two writes: one send for both instead
        self._headers_buffer.append(b"\r\n" if self.command == "HEAD" else b"\r\n" + data)
        self.flush_headers()

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _dispatch  # noqa: N815

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        """Any other method (PATCH, OPTIONS, FOO) is routed too, and answered 404/405 in JSON, not 501."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines and headers (http.server's own 400/414/431) answered in JSON too."""
        data = json.dumps({"error": message or explain or self.responses.get(code, ("error",))[0]}).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.app.config.access_log:
            super().log_message(format, *args)


def make_server(app: App) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"app": app})
    # a deep accept backlog: with the default of 5, a burst of new connections waits out a 1 s SYN retry
    server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 256})
    server = server_class((app.config.host, app.config.port), handler)
    server.daemon_threads = True
    return server


def serve(config: ServeConfig) -> int:
    """Run until SIGTERM/SIGINT; flush the prediction log on the way out."""
    app = App(config)
    t0 = time.perf_counter()
    loaded = app.preload()
    settle()
    server = make_server(app)
    host, port = server.server_address[:2]
    print(f"[bqx serve] listening on http://{host}:{port} with {len(loaded)} model(s) preloaded in "
          f"{time.perf_counter() - t0:.1f} s; memory budget {app.store.budget / 2**20:,.0f} MiB; loads "
          f"{app.policy.describe()}; management routes "
          f"{'need a bearer token' if config.auth_token else 'open (no token)'}", flush=True)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        app.close()
        print("[bqx serve] stopped", flush=True)
    return 0
