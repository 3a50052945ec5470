"""``bqx run --local`` killed: nothing goes on writing, a signal gets one line and 128 + its number, and a
rerun in the same output directory gives the same models and metrics, byte for byte, as a clean run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bqx.model_package import sha256_of
from bqx.sample import write_sample

pytestmark = pytest.mark.e2e


def _cli(bars: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bqx.cli", "run", "--local", "--bars", str(bars), "--pairs",
                             "eurusd", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _processes() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, state) of every process, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found.append((int(stat.parent.name), int(fields[1]), int(fields[2]), fields[0]))
    return found


def _children(pid: int) -> list[int]:
    return [p for p, ppid, _, _ in _processes() if ppid == pid]


def _group(pgid: int) -> list[int]:
    return [p for p, _, group, state in _processes() if group == pgid and state != "Z"]


def _until_stage(proc: subprocess.Popen, word: str) -> int:
    """Read progress lines until ``word`` shows; the runner's process group id."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if word in line:
            break
    else:
        pytest.fail(f"the run ended before {word!r}: {proc.stderr.read() if proc.stderr else ''}")
    (runner,) = _children(proc.pid)
    assert os.getpgid(runner) == runner and _group(runner)
    return runner


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _gone(pgid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while _group(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _results(out: Path) -> tuple[str, dict]:
    (run,) = [d for d in (out / "runs").iterdir() if (d / "run.json").exists()]
    (task,) = run.glob("bqx-train-*/for-loop-*/train-model")
    metrics = json.loads((task / "executor_output.json").read_text())["artifacts"]["metrics"]["artifacts"][0]
    return sha256_of(task / "model" / "model.tar.gz"), metrics["metadata"]


@pytest.fixture(scope="module")
def bars(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kills")
    write_sample(root / "bars", ["eurusd"], days=4, seed=11)
    return root / "bars"


def test_sigkill_stops_every_stage_and_a_rerun_matches_a_clean_run(bars, tmp_path):
    out = tmp_path / "out"
    killed = _cli(bars, out)
    runner = _until_stage(killed, "extract")  # extract is done; lag and select are running
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert _gone(runner), f"stage processes outlived the CLI: {_group(runner)}"
    before = _files(out)
    time.sleep(2)
    assert _files(out) == before  # nothing writes into --out any more
    (partial,) = (out / "runs").iterdir()
    assert not (partial / "run.json").exists() and not (out / "latest").exists()

    rerun = _cli(bars, out)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr
    assert f"1 earlier run(s) under {out / 'runs'} did not finish (killed): {partial.name}" in stdout
    clean = _cli(bars, tmp_path / "clean")
    assert clean.wait(timeout=600) == 0
    (done,) = [d for d in (out / "runs").iterdir() if d != partial]
    assert (out / "latest").resolve() == done and json.loads((done / "run.json").read_text())["status"] == "succeeded"
    assert (done / "run.log").stat().st_size > 0 and (partial / "run.log").stat().st_size > 0  # each run keeps its log
    tarball, metrics = _results(out)
    assert (tarball, metrics) == _results(tmp_path / "clean")  # the same package bytes, so the same model_version


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_a_signal_stops_the_run_with_one_line(bars, tmp_path, sig, name):
    proc = _cli(bars, tmp_path / "out")
    runner = _until_stage(proc, "ingest")
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(f"bqx run: stopped by {name} after ") and "every stage process was stopped" in line
    assert _gone(runner)
