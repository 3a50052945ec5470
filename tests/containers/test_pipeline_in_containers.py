"""`bqx run --local --runner docker`: the compiled pipeline through kfp.local's DockerRunner, every task in
its own stage image, on sample bars; the same models and metrics as the subprocess runner."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from bqx.config import RegistrySettings, Settings
from bqx.kubeflow.local_run import Runner, run_local
from bqx.model_package import sha256_of
from bqx.registry.gate import APPROVED, decide
from bqx.sample import write_sample

PAIRS = ["eurusd", "usdjpy"]


def _by_pair(result: object, task: str, output: str) -> dict[str, Path]:
    return {t.pair: Path(t.artifacts[output]["uri"]) for t in result.find(task)}  # type: ignore[attr-defined]


def test_sample_pipeline_with_every_task_in_its_stage_image(engine, images, tmp_path):
    write_sample(tmp_path / "bars", PAIRS, days=4, seed=5)
    runner = Runner("docker", images.registry, images.tag)
    in_containers = run_local(tmp_path / "bars", tmp_path / "docker", Settings(), PAIRS,
                              echo=open(tmp_path / "docker.txt", "w"), runner=runner)
    here = run_local(tmp_path / "bars", tmp_path / "subprocess", Settings(), PAIRS,
                     echo=open(tmp_path / "subprocess.txt", "w"))

    # every task ran in the image of its stage, as the compiled pipeline names it
    log = in_containers.log_path.read_text()
    used = set(re.findall(rf"{re.escape(images.registry)}/bqx-(\w+):{re.escape(images.tag)}", log))
    assert used == {"ingest", "panel", "extract", "lag", "select", "tune", "train", "drift", "deploy"}
    progress = (tmp_path / "docker.txt").read_text()
    for pair in PAIRS:
        assert f"train   {pair}" in progress and f"drift   {pair}" in progress

    # the same outputs as the subprocess runner: the model packages byte for byte, metrics, drift, deploy
    for pair, model in _by_pair(in_containers, "train-model", "model").items():
        assert sha256_of(model / "model.tar.gz") == sha256_of(_by_pair(here, "train-model", "model")[pair] /
                                                            "model.tar.gz")
    for task, output in (("train-model", "metrics"), ("drift-report", "summary")):
        for a, b in zip(sorted(in_containers.find(task), key=lambda t: t.pair or ""),
                        sorted(here.find(task), key=lambda t: t.pair or ""), strict=True):
            assert a.artifacts[output]["metadata"] == b.artifacts[output]["metadata"], (task, a.pair)
    repos = [Path(r.find("deploy-models")[0].artifacts["repository"]["uri"]) for r in (in_containers, here)]
    manifests = [json.loads((repo / "manifest.json").read_text())["models"] for repo in repos]
    assert manifests[0] == manifests[1]
    approved = sorted(t.pair for t in here.find("train-model")
                      if decide(t.artifacts["metrics"]["metadata"], RegistrySettings()).status == APPROVED)
    assert sorted(manifests[0]) == approved  # what the gate let through, the same in both


def test_a_stopped_container_run_leaves_no_container(engine, images, tmp_path):
    """SIGTERM while tasks run in containers: one line, 143, and none of the run's containers left."""
    import os
    import signal
    import subprocess
    import sys

    write_sample(tmp_path / "bars", ["eurusd"], days=4, seed=6)
    proc = subprocess.Popen([sys.executable, "-m", "bqx.cli", "run", "--local", "--runner", "docker", "--registry",
                             images.registry, "--tag", images.tag, "--bars", str(tmp_path / "bars"), "--pairs",
                             "eurusd", "--out", str(tmp_path / "out")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    assert proc.stdout is not None
    run_id = next(line.split()[1].rstrip(":") for line in proc.stdout if line.startswith("run "))
    label = {"label": f"bqx.run={run_id}"}
    deadline = time.monotonic() + 120
    while not engine.containers.list(filters=label):  # a task's container is running
        assert time.monotonic() < deadline and proc.poll() is None, "no container of the run started"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "stopped by SIGTERM" in stderr.strip().splitlines()[-1]
    assert engine.containers.list(all=True, filters=label) == []
