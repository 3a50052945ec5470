"""The inference server as a hostile but fair client meets it: where it listens, what it will load,
who may manage models, and requests built to break it (each answered 4xx, never 5xx)."""

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import boto3
import httpx
import pytest

from bqx.serving.config import ServeConfig, check
from bqx.serving.launch import bqx_serve, free_port, started
from bqx.serving.models import ModelStore
from bqx.serving.payload import PayloadError
from bqx.serving.server import App
from bqx.serving.synthetic import feature_names, synthetic_model

FEATURES = feature_names(6)
TOKEN = "s3cr3t-token-0123456789"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A model root with one real package; its sibling ``outside`` holds another one."""
    base = tmp_path_factory.mktemp("serve")
    (base / "root").mkdir()
    (base / "outside").mkdir()
    synthetic_model(base / "root" / "eurusd.tar.gz", "eurusd", FEATURES, rows=300, iterations=10)
    synthetic_model(base / "outside" / "secret.tar.gz", "eurusd", FEATURES, rows=300, iterations=10, seed=1)
    return base / "root"


def _app(root: Path | None, token: str = "") -> App:
    return App(ServeConfig(model_root=str(root) if root else "", auth_token=token), ModelStore())


def _load(app: App, url: str, name: str = "m", headers: dict | None = None) -> tuple[int, dict]:
    body = json.dumps({"model_name": name, "url": url}).encode()
    try:
        return app.handle("POST", "/models", headers or {}, body)
    except PayloadError as exc:
        return exc.status, {"error": exc.message}


def test_the_server_binds_loopback_unless_told(root):
    assert ServeConfig().host == "127.0.0.1"
    assert ServeConfig.from_env({"BQX_SERVE_HOST": "0.0.0.0"}).host == "0.0.0.0"
    dockerfile = (Path(__file__).parents[1] / "images" / "Dockerfile").read_text()
    assert "BQX_SERVE_HOST=0.0.0.0" in dockerfile and "BQX_SERVE_MODEL_ROOT=/opt/ml/models" in dockerfile
    port = free_port()
    with started(bqx_serve(port, host=None), f"http://127.0.0.1:{port}") as running:
        pass
    assert f"listening on http://127.0.0.1:{port}" in running.output()
    with pytest.raises(ValueError, match="BQX_SERVE_PORT='http'"):
        ServeConfig.from_env({"BQX_SERVE_PORT": "http"})
    with pytest.raises(ValueError, match="at least 16"):
        check(ServeConfig(auth_token="short"))


def test_loads_stay_inside_the_model_root(root, tmp_path):
    outside = root.parent / "outside" / "secret.tar.gz"
    app = _app(root)
    assert _load(app, "eurusd.tar.gz", "rel")[0] == 200  # relative to the root
    assert _load(app, str(root / "eurusd.tar.gz"), "abs")[0] == 200
    # outside, existing or not: the same 403, so the API tells nothing about the file system
    refused = [_load(app, url) for url in (str(outside), "/no/such/file.tar.gz", "../outside/secret.tar.gz",
                                           str(root / ".." / "outside" / "secret.tar.gz"), "/etc/passwd")]
    assert {status for status, _ in refused} == {403}
    assert len({body["error"].split("'", 2)[2] for _, body in refused}) == 1
    # symlinks are resolved: a link inside the root to a package outside it is outside
    link = root / "link.tar.gz"
    link.symlink_to(outside)
    try:
        assert _load(app, "link.tar.gz")[0] == 403
    finally:
        link.unlink()
    # a model directory inside the root whose files link outside is refused too
    d = root / "dirmodel"
    d.mkdir()
    with tarfile.open(outside) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    for f in (tmp_path / "x").iterdir():
        (d / f.name).symlink_to(f)
    status, body = _load(app, "dirmodel")
    assert status == 403 and "links outside" in body["error"]
    # no root: local loads are off altogether; s3:// must name a tarball; other schemes are refused
    assert _load(_app(None), str(root / "eurusd.tar.gz"))[0] == 403
    assert _load(app, "s3://bucket/")[0] == 400 and _load(app, "file:///etc/passwd")[0] == 400
    assert _load(app, "eur\x00usd.tar.gz")[0] == 400


def test_s3_loads_through_the_aws_endpoint(root, moto_server, tmp_path):
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="bqx-serve-models")
    s3.upload_file(str(root / "eurusd.tar.gz"), "bqx-serve-models", "models/eurusd-1.tar.gz")
    s3.put_object(Bucket="bqx-serve-models", Key="models/junk.tar.gz", Body=os.urandom(300))
    app = _app(None)
    status, body = _load(app, "s3://bqx-serve-models/models/eurusd-1.tar.gz")
    assert status == 200 and body["modelUrl"] == "s3://bqx-serve-models/models/eurusd-1.tar.gz"
    assert _load(app, "s3://bqx-serve-models/models/none.tar.gz", "n")[0] == 404
    assert _load(app, "s3://no-such-bucket-here/x.tar.gz", "b")[0] == 404
    assert _load(app, "s3://Bad_Bucket!/x.tar.gz", "v")[0] == 400  # botocore refuses the name itself
    status, body = _load(app, "s3://bqx-serve-models/models/junk.tar.gz", "j")
    assert status == 400 and "not a readable gzip-compressed tar archive" in body["error"]
    app.store._loaded.clear()  # evicted: the next invocation fetches it from S3 again
    row = {f: 0.5 for f in FEATURES}
    assert app.invoke("m", json.dumps({"features": row}).encode(), "application/json")["predictions"]
    assert app.store.reloads == 1


def _tarball(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_packages_that_escape_or_do_not_parse_are_400(root, tmp_path):
    app = _app(root)
    with tarfile.open(root / "eurusd.tar.gz") as tar:
        good = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    victim = root.parent / "victim.txt"
    cases = {
        "dotdot": ([(_info("../victim.txt"), b"pwned")], "outside the package directory"),
        "absolute": ([(_info(str(victim)), b"pwned")], "outside the package directory"),
        "symlink": ([(_info("model.cbm", tarfile.SYMTYPE, "/etc/passwd"), b"")], "link or special file"),
        "hardlink": ([(_info("model.cbm", tarfile.LNKTYPE, "../../victim.txt"), b"")], "link or special file"),
        "device": ([(_info("model.cbm", tarfile.CHRTYPE), b"")], "link or special file"),
        "garbage-json": ([(_info(n), b"garbage" if n == "model.json" else d) for n, d in good.items()],
                         "model.json: Expecting value"),
        "list-json": ([(_info(n), b"[1]" if n == "model.json" else d) for n, d in good.items()],
                      "model.json must hold a JSON object"),
        "not-a-model": ([(_info(n), b'{"oblivious_trees": [{"splits": [{}]}]}' if n == "model.json" else d)
                         for n, d in good.items()], "not a CatBoost JSON export"),
        "selection-list": ([(_info(n), b"[1, 2]" if n == "selection.json" else d) for n, d in good.items()],
                           "must hold a JSON object"),
        "no-features": ([(_info(n), b'{"features": []}' if n == "selection.json" else d) for n, d in good.items()],
                        "'features' must be a non-empty list"),
        "deep-json": ([(_info(n), b"[" * 100_000 if n == "meta.json" else d) for n, d in good.items()],
                      "meta.json is not valid JSON"),
        "missing": ([(_info("model.cbm"), good["model.cbm"])], "lacks selection.json, meta.json"),
        "long-name": ([*((_info(n), d) for n, d in good.items()), (_info("x" * 300), b"1")],
                      "longer than 255 bytes"),  # once a 500: OSError(36, 'File name too long')
    }
    for name, (members, words) in cases.items():
        status, body = _load(app, _tarball(root / f"{name}.tar.gz", members).name, name)
        assert status == 400 and words in body["error"], (name, body)
    assert not victim.exists()
    raw = (root / "eurusd.tar.gz").read_bytes()
    for name, data in {"random": os.urandom(5000), "truncated": raw[: len(raw) // 2], "empty": b"",
                       "gzip-not-tar": gzip.compress(b"hello" * 1000),
                       "bad-deflate": raw[:20] + bytes(b ^ 0x5A for b in raw[20:200]) + raw[200:]}.items():
        (root / f"{name}.tar.gz").write_bytes(data)
        status, body = _load(app, f"{name}.tar.gz", name)
        assert status == 400, (name, body)
    assert app.store.names() == []


def test_management_routes_need_the_token_when_one_is_set(root, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with started(bqx_serve(port, "--model-root", str(root), "--auth-token-file", str(token_file)),
                 f"http://127.0.0.1:{port}") as running, httpx.Client(base_url=running.url, timeout=30) as c:
        load = {"model_name": "eurusd", "url": "eurusd.tar.gz"}
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
                        {"Authorization": f"Basic {TOKEN}"}):
            r = c.post("/models", json=load, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), headers
        assert c.get("/models").status_code == 401 and c.get("/models/eurusd").status_code == 401
        assert c.delete("/models/eurusd").status_code == 401
        assert c.post("/models", json=load, headers=auth).status_code == 200
        assert c.get("/models", headers=auth).json()["models"][0]["modelName"] == "eurusd"
        # invocations and health stay open: they are what the endpoint is for
        assert c.get("/ping").status_code == 200
        r = c.post("/models/eurusd/invoke", json={"features": {f: 0.1 for f in FEATURES}})
        assert r.status_code == 200
        assert c.delete("/models/eurusd", headers=auth).status_code == 200
    assert "management routes need a bearer token" in running.output()
    assert TOKEN not in running.output()


def test_bodies_built_to_break_the_parser_are_400_over_http(root):
    port = free_port()
    with started(bqx_serve(port, "--model-root", str(root)), f"http://127.0.0.1:{port}") as running, \
            httpx.Client(base_url=running.url, timeout=30) as c:
        assert c.post("/models", json={"model_name": "eurusd", "url": "eurusd.tar.gz"}).status_code == 200
        for body in (b"[" * 100_000, b'{"rows": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", b"{" * 100_000,
                     b'{"a":' * 30_000, b"9" * 5000, "\ud800".encode("utf-8", "surrogatepass"), b"\xff\xfe{}"):
            for path in ("/models/eurusd/invoke", "/invocations", "/models"):
                r = c.post(path, content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 400, (path, body[:20], r.text)
        r = c.post("/models", json={"model_name": "garbage", "url": "../../../../etc/shadow"})
        assert r.status_code == 403
        (root / "garbage.tar.gz").write_bytes(b"\x1f\x8b" + os.urandom(1000))
        r = c.post("/models", json={"model_name": "garbage", "url": "garbage.tar.gz"})
        assert r.status_code == 400 and "garbage.tar.gz" in r.json()["error"]
        assert c.post("/models", json={"model_name": "\x00", "url": "eurusd.tar.gz"}).status_code == 400
    assert "500" not in running.output()
