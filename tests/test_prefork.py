"""kfp.local tasks forked from the prefork server: real kfp.local runs of a small component, the server's
real fork and exit status, and the cases that fall back to a subprocess."""

import os
import stat
import time
from pathlib import Path

import pytest
from kfp import dsl, local

from bqx.kubeflow import prefork
from bqx.kubeflow.components import extract_features
from bqx.kubeflow.local_run import Runner, _forked_tasks

pytestmark = pytest.mark.skipif(not prefork.supported(), reason="the prefork server needs Linux")


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def probe(fail: bool, x: int) -> str:
    import os
    import sys

    import numpy as np

    print(f"probe sees x={x}")
    if fail:
        raise RuntimeError("probe failed on purpose")
    return f"{x * 2} {os.getppid()} {'evidently' in sys.modules} {os.environ.get('_KFP_RUNTIME')} {np.random.random()}"


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def kernels_probe() -> str:
    import os

    from bqx.features import hmm_regime, spec

    return f"{os.getppid()} {len(spec._KERNELS)} {len(hmm_regime._baum_welch.signatures)}"


def launcher(component: object) -> list[str]:
    container = component.component_spec.implementation.container  # type: ignore[attr-defined]
    return [*container.command, *container.args]


def wait_ready(log: Path, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while "stage imports ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() - t0 < timeout, f"prefork server not ready: {log.read_text() if log.exists() else ''}"
        time.sleep(0.1)


def test_kfps_launcher_is_recognised_and_others_are_not():
    command = launcher(extract_features)
    assert prefork.forkable(command)
    assert not prefork.forkable(["sh", "-ec", command[2].replace("python3 -m", "pip install x; python3 -m"),
                                 *command[3:]])
    assert not prefork.forkable(["python3", "-m", "kfp.dsl.executor_main", "--executor_input", "{}"])
    assert not prefork.forkable(["sh", "-c", "echo hi", "x"])


def test_tasks_are_forked_from_the_warm_server_with_their_output_and_status(tmp_path, capsys):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path), raise_on_error=True)
    with _forked_tasks(Runner("subprocess"), tmp_path) as server:
        assert server is not None
        wait_ready(tmp_path / "prefork.log")
        doubled, parent, warm, runtime, draw = probe(fail=False, x=21).output.split()
        assert (doubled, int(parent), warm, runtime) == ("42", server.proc.pid, "True", "true")  # forked, warm
        assert probe(fail=False, x=21).output.split()[4] != draw  # numpy's global generator seeded afresh
        assert "probe sees x=21" in capsys.readouterr().out  # the task's lines reach kfp.local's output
        with pytest.raises(RuntimeError, match="FAILURE"):
            probe(fail=True, x=1)
        out = capsys.readouterr().out
        assert "probe failed on purpose" in out and "Traceback" in out  # as a cold Python would print it
    assert server.proc.returncode is not None and not Path(server.dir).exists()  # stopped with the run


def test_with_the_runs_settings_tasks_find_the_feature_kernels_loaded(tmp_path):
    """The server runs a short extract with the run's settings before the stages' later imports: a task
    forked after it has the declared kernels and the hand-written numba functions (the HMM fit) loaded."""
    from bqx.config import Settings

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path), raise_on_error=True)
    with _forked_tasks(Runner("subprocess"), tmp_path, Settings().to_json()) as server:
        assert server is not None
        wait_ready(tmp_path / "prefork.log", timeout=900)  # a machine without numba's cache compiles them
        parent, kernels, fits = map(int, kernels_probe().output.split())
        assert parent == server.proc.pid and kernels >= 16 and fits == 1
    assert "prefork: feature kernels ready in " in (tmp_path / "prefork.log").read_text()


def test_without_the_server_every_task_runs_as_a_subprocess(tmp_path, capsys, monkeypatch):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path), raise_on_error=True)
    monkeypatch.setenv("BQX_PREFORK", "0")
    with _forked_tasks(Runner("subprocess"), tmp_path) as server:
        assert server is None
        doubled, _, warm, _, _ = probe(fail=False, x=2).output.split()
    assert (doubled, warm) == ("4", "False")  # kfp.local's own subprocess: a cold Python
    assert not (tmp_path / "prefork.log").exists()


def test_the_server_is_private_and_declines_what_it_cannot_run_exactly(tmp_path, monkeypatch):
    server = prefork.Prefork(tmp_path / "prefork.log")
    try:
        assert stat.S_IMODE(os.stat(server.dir).st_mode) == 0o700  # no other user reaches the socket
        wait_ready(tmp_path / "prefork.log")
        command = launcher(extract_features)
        assert server.run(command, {"X": "1"}, print) is None  # kfp.local gives the task an environment
        assert server.run(["python3", "-c", "pass"], None, print) is None  # not kfp's launcher
        monkeypatch.setenv("BQX_SOMETHING_NEW", "1")
        assert server.run(command, None, print) is None  # the environment changed since the server started
        monkeypatch.delenv("BQX_SOMETHING_NEW")
        server.proc.kill()
        server.proc.wait()
        assert server.run(command, None, print) is None  # the server is gone
    finally:
        server.close()
    assert not Path(server.dir).exists()


def test_every_preloaded_module_exists():
    import importlib.util

    modules = [m for m in prefork.FIRST + prefork.PRELOAD if m != prefork.WARM_KERNELS]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    assert not missing, f"PRELOAD names modules that do not exist: {missing}"
