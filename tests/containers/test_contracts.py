"""The built images under the contracts they ship for: the train image run as a SageMaker training job
runs it, the serve image started as a SageMaker endpoint starts it, and what each image holds."""

from __future__ import annotations

import json
import os
import tarfile
import time
from pathlib import Path

import docker
import httpx
import numpy as np
import pytest

from bqx.kubeflow.images import IMAGES
from bqx.locations import read_served
from bqx.model_package import load_dir, sha256_of
from bqx.sample import generate
from bqx.serving.config import ServeConfig
from bqx.serving.launch import free_port
from bqx.serving.models import ModelStore
from bqx.serving.server import App
from bqx.serving.synthetic import feature_names, synthetic_channels, synthetic_hyperparameters, synthetic_model
from bqx.train.local import train_local

FEATURES = feature_names(10)
# real catalog features of per-pair tables, so raw-bars requests run the online engine
ONLINE_FEATURES = ["technical_idx.rsi_14", "technical_bqx.rsi_14_lag60", "moving_avg_idx.ema60_dist",
                   "statistics_bqx.w60_skew", "bqx.w15_bqx_return_lag61"]
IMAGE_USER = (1000, 1000)


def _writable_by_image(root: Path) -> None:
    """The images run as uid 1000; as root here, hand the mounted tree to that user."""
    if os.getuid() == 0:
        for path in [root, *root.rglob("*")]:
            os.chown(path, *IMAGE_USER)


def _opt_ml(root: Path, hyperparameters: dict[str, str]) -> Path:
    synthetic_channels(root / "input" / "data", "eurusd", FEATURES, rows=500, seed=3)
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    _writable_by_image(root)
    return root


def test_train_image_runs_the_sagemaker_training_contract(engine, images, tmp_path):
    hp = synthetic_hyperparameters(iterations=40, depth=4, seed=3)
    root = _opt_ml(tmp_path / "opt_ml", hp)
    logs = engine.containers.run(images.ref("train"), ["train"], remove=True, network_disabled=True,
                                 cap_drop=["ALL"], security_opt=["no-new-privileges"],
                                 volumes={str(root): {"bind": "/opt/ml", "mode": "rw"}}).decode()
    assert '"status": "Completed"' in logs
    model = load_dir(root / "model")
    assert model.features == FEATURES and sorted(p.name for p in (root / "model").iterdir()) == [
        "meta.json", "model.cbm", "model.json", "reference.parquet", "selection.json"]
    # the same channels trained on this machine's Python give the same model, byte for byte
    here = synthetic_channels(tmp_path / "here", "eurusd", FEATURES, rows=500, seed=3)
    train_local(here, hp, tmp_path / "here.tar.gz")
    with tarfile.open(tmp_path / "here.tar.gz") as tar:
        tar.extract("model.cbm", tmp_path / "here-model", filter="data")
    assert sha256_of(tmp_path / "here-model" / "model.cbm") == sha256_of(root / "model" / "model.cbm")


def test_train_image_reports_bad_input_in_the_failure_file(engine, images, tmp_path):
    root = _opt_ml(tmp_path / "opt_ml", {**synthetic_hyperparameters(), "depht": "4"})
    with pytest.raises(docker.errors.ContainerError) as err:
        engine.containers.run(images.ref("train"), ["train"], remove=True, network_disabled=True,
                              volumes={str(root): {"bind": "/opt/ml", "mode": "rw"}})
    assert err.value.exit_status == 1
    assert "unknown hyperparameter 'depht'" in (root / "output" / "failure").read_text()
    assert not (root / "model" / "model.cbm").exists()


def _wait_ping(url: str, container: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ping", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    container.reload()  # type: ignore[attr-defined]
    pytest.fail(f"the serve container did not answer /ping: {container.logs().decode()[-2000:]}")  # type: ignore


def test_serve_image_answers_as_sagemaker_starts_it(engine, images, tmp_path):
    """`<image> serve` on port 8080 with packages unpacked under /opt/ml/models, as SageMaker's
    multi-model endpoints run it; here with a read-only root file system on top. Feature rows and raw
    bars (the online engine, from the kernels compiled into the image) predict as this machine does."""
    models = tmp_path / "models"
    tarball = synthetic_model(tmp_path / "eurusd.tar.gz", "eurusd", ONLINE_FEATURES, rows=400, iterations=20)
    with tarfile.open(tarball) as tar:
        tar.extractall(models / "eurusd" / "model", filter="data")
    log_dir = tmp_path / "predictions"
    log_dir.mkdir()
    _writable_by_image(log_dir)
    port = free_port()
    container = engine.containers.run(images.ref("serve"), ["serve"], detach=True, read_only=True,
                                      cap_drop=["ALL"], security_opt=["no-new-privileges"],
                                      tmpfs={"/tmp": "size=64m"}, ports={"8080/tcp": ("127.0.0.1", port)},
                                      environment={"BQX_SERVE_LOG_DIR": "/predictions", "BQX_VARIANT": "candidate"},
                                      volumes={str(models): {"bind": "/opt/ml/models", "mode": "ro"},
                                               str(log_dir): {"bind": "/predictions", "mode": "rw"}})
    url = f"http://127.0.0.1:{port}"
    here = App(ServeConfig(), ModelStore())
    here.store.load("eurusd", str(tarball))
    try:
        _wait_ping(url, container)
        with httpx.Client(base_url=url, timeout=120) as c:
            r = c.post("/models", json={"model_name": "eurusd", "url": "/opt/ml/models/eurusd/model"})
            assert r.status_code == 200, r.text
            assert c.post("/models", json={"model_name": "x", "url": "/etc/passwd"}).status_code == 403
            assert [m["modelName"] for m in c.get("/models").json()["models"]] == ["eurusd"]
            rows = np.random.default_rng(1).standard_normal((4, len(ONLINE_FEATURES)))
            body = {"rows": [dict(zip(ONLINE_FEATURES, row.tolist(), strict=True)) for row in rows],
                    "ts_utc": [f"2024-07-03T10:0{i}:00Z" for i in range(len(rows))]}
            out = c.post("/models/eurusd/invoke", json=body, headers={"X-Amzn-SageMaker-Target-Model": "eurusd"})
            assert out.status_code == 200, out.text
            local = load_dir(models / "eurusd" / "model").predict(rows)
            np.testing.assert_allclose([p["prediction"] for p in out.json()["predictions"]], local, rtol=1e-9)
            assert out.json()["variant"] == "candidate"  # an A/B variant's container names itself
            # Batch Transform's form: CSV rows by line in the model's feature order, one prediction per line back
            csv = "\n".join(",".join(repr(v) for v in row) for row in rows.tolist()).encode()
            got = c.post("/models/eurusd/invoke", content=csv, headers={"Content-Type": "text/csv",
                                                                        "Accept": "text/csv"})
            assert got.status_code == 200 and got.headers["content-type"] == "text/csv", got.text
            np.testing.assert_allclose([float(v) for v in got.text.split()], local, rtol=1e-9)
            # raw bars: the online engine from the kernels compiled into the image (it does not compile them)
            bars = _bars_json(generate(["eurusd"], days=3, seed=2)["eurusd"])
            t0 = time.perf_counter()
            seeded = c.post("/models/eurusd/invoke", json={"bars": bars})
            assert seeded.status_code == 200, seeded.text[:500]
            assert time.perf_counter() - t0 < 20
            want = here.invoke("eurusd", json.dumps({"bars": bars}).encode(), "application/json")
            assert seeded.json()["predictions"][0]["prediction"] == pytest.approx(
                want["predictions"][0]["prediction"], rel=1e-9)
            assert c.delete("/models/eurusd").status_code == 200
            assert c.post("/models/eurusd/invoke", json=body).status_code == 404
        container.stop(timeout=20)  # SIGTERM, as SageMaker stops a container: the prediction log is flushed
        assert container.wait(timeout=30)["StatusCode"] == 0
        assert "[bqx serve] stopped" in container.logs().decode()
    finally:
        container.remove(force=True)
    logged = read_served(log_dir, "eurusd")
    logged = logged[logged.index.year == 2024]  # the CSV rows carry no bar time: logged at the time served
    assert len(logged) == 5 and str(logged.index[0]) == "2024-07-03 10:00:00+00:00"


def _bars_json(frame: object) -> list[dict]:
    out = frame.assign(ts_utc=frame["ts_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))  # type: ignore[attr-defined]
    return json.loads(out.to_json(orient="records"))


def test_serve_image_holds_no_shell_no_tools_and_no_pipeline_packages(engine, images):
    ref = images.ref("serve")
    for shell in ("/bin/sh", "/bin/bash", "/bin/dash"):
        with pytest.raises((docker.errors.APIError, docker.errors.ContainerError)):
            engine.containers.run(ref, ["-c", "true"], entrypoint=[shell], remove=True)
    script = ("import importlib.util as u, os, json\n"
              "dirs = ('/bin', '/sbin', '/usr/bin', '/usr/sbin', '/usr/local/bin')\n"
              "print(json.dumps(sorted({n for d in dirs if os.path.isdir(d) for n in os.listdir(d)})))\n"
              "mods = ('kfp', 'evidently', 'matplotlib', 'catboost', 'numba')\n"
              "print(json.dumps([m for m in mods if u.find_spec(m)]))")
    out = engine.containers.run(ref, ["-c", script], entrypoint=["python3"], remove=True).decode().splitlines()
    programs, packages = json.loads(out[0]), json.loads(out[1])
    assert programs and all(name.startswith("python3") for name in programs), programs
    assert packages == ["numba"]  # predictions come from model.json: no catboost, no plotting, no kfp


@pytest.mark.parametrize("name", IMAGES)
def test_every_image_runs_as_a_non_root_user_with_what_its_extras_install(engine, images, name):
    from bqx.ship import image_extras

    config = engine.images.get(images.ref(name)).attrs["Config"]
    assert config["User"] == "1000:1000" and config["Entrypoint"] == ["bqx"]
    labels = config.get("Labels") or {}
    assert labels.get("org.opencontainers.image.title") == "bqx-ml"
    if name != "serve":
        extras = image_extras(Path(__file__).resolve().parents[2], name)
        assert labels["org.opencontainers.image.description"].endswith(f"bqx-ml[{extras}] on Python")
