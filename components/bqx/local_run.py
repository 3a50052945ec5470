"""``bqx run --local``: the whole pipeline on this machine through ``kfp.local.SubprocessRunner``.

Every stage runs as the same KFP component it is on a cluster, in a subprocess of this Python (no
venv, no containers). The tasks' own logs go to ``{out}/run.log``; the terminal gets one line per
stage as it starts and ends, and at the end where every output went.
"""

from __future__ import annotations

import builtins
import io
import json
import re
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from bqx.config import Settings
from bqx.progress import MARK

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROGRESS_MARK = MARK  # stages print one line with this mark when they finish (bqx.progress.say)
_END = re.compile(r"Task '?(?P<task>[\w\-]+)'? finished with status (?P<status>\w+)")


class _ProgressTee(io.TextIOBase):
    """Write everything to the log; echo stage progress lines and failed tasks to the terminal."""

    def __init__(self, log: io.TextIOBase, term: io.TextIOBase, t0: float) -> None:
        self.log, self.term, self.t0 = log, term, t0
        self.buf = ""
        self.failed: list[str] = []

    def write(self, s: str) -> int:
        self.log.write(s)
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self._scan(_ANSI.sub("", line))
        return len(s)

    def _scan(self, line: str) -> None:
        elapsed = f"[{time.perf_counter() - self.t0:6.1f}s]"
        if (m := _END.search(line)) and m["status"] != "SUCCESS":
            self.failed.append(m["task"])
            self.term.write(f"{elapsed} FAILED {m['task']}\n")
        elif PROGRESS_MARK in line:
            self.term.write(f"{elapsed} {line.split(PROGRESS_MARK, 1)[1].strip()}\n")
        else:
            return
        self.term.flush()

    def flush(self) -> None:
        self.log.flush()


@dataclass
class TaskOutputs:
    task: str  # e.g. "ingest-bars" or "for-loop-1-iteration-0/train-model"
    artifacts: dict[str, dict]  # output name -> {"uri": ..., "metadata": {...}}

    @property
    def pair(self) -> str | None:
        for art in self.artifacts.values():
            if "pair" in art["metadata"]:
                return str(art["metadata"]["pair"])
        return None


@dataclass
class LocalRunResult:
    run_dir: Path
    log_path: Path
    seconds: float
    tasks: list[TaskOutputs]

    def find(self, task: str) -> list[TaskOutputs]:
        """Outputs of every execution of a task (one per pair inside the ParallelFor)."""
        return [t for t in self.tasks if t.task.rsplit("/", 1)[-1] == task]


def read_outputs(run_dir: Path) -> list[TaskOutputs]:
    """Every task's output artifacts (URI and metadata, metrics included) from its executor_output.json."""
    tasks = []
    for f in sorted(run_dir.rglob("executor_output.json")):
        doc = json.loads(f.read_text())
        arts = {name: {"uri": a["artifacts"][0]["uri"], "metadata": a["artifacts"][0].get("metadata", {})}
                for name, a in doc.get("artifacts", {}).items() if a.get("artifacts")}
        tasks.append(TaskOutputs(str(f.parent.relative_to(run_dir)), arts))
    return tasks


def run_local(source: str | Path, out_dir: str | Path, settings: Settings, pairs: list[str] | None = None,
              echo: io.TextIOBase | None = None, train_backend: str = "local",
              deploy_backend: str = "local") -> LocalRunResult:
    """Run the training pipeline through kfp.local; raise RuntimeError naming the failed task(s) and the log."""
    from bqx.pipeline import PIPELINE_NAME, bqx_pipeline

    return _run(bqx_pipeline, PIPELINE_NAME, out_dir, echo, source=_where(source), pairs=list(pairs or settings.pairs),
                settings_json=settings.to_json(), train_backend=train_backend, deploy_backend=deploy_backend)


def run_local_drift(source: str | Path, model_repository: str | Path, out_dir: str | Path, settings: Settings,
                    pairs: list[str] | None = None, echo: io.TextIOBase | None = None) -> LocalRunResult:
    """Run the recurring drift pipeline (bqx-drift) through kfp.local against a model repository."""
    from bqx.pipeline import DRIFT_PIPELINE_NAME, bqx_drift_pipeline

    return _run(bqx_drift_pipeline, DRIFT_PIPELINE_NAME, out_dir, echo, source=_where(source),
                model_repository=_where(model_repository), pairs=list(pairs or settings.pairs),
                settings_json=settings.to_json())


def _where(location: str | Path) -> str:
    return str(location) if str(location).startswith("s3://") else str(Path(location).resolve())


def _run(pipeline: object, name: str, out_dir: str | Path, echo: io.TextIOBase | None, **arguments: object
         ) -> LocalRunResult:
    from kfp import local

    term = echo or sys.stdout
    out = Path(out_dir).resolve()
    root = out / "pipeline_root"
    root.mkdir(parents=True, exist_ok=True)
    log_path = out / "run.log"
    before = set(root.iterdir())
    t0 = time.perf_counter()
    real_print = builtins.print  # kfp.local swaps print for an indenting one and may leave it behind
    with open(log_path, "w") as log:
        tee = _ProgressTee(log, term, t0)
        with warnings.catch_warnings(), redirect_stdout(tee):
            # kfp warns that our stage images are not python:* images; here they run in this Python.
            warnings.filterwarnings("ignore", message="You may be attemping to run a task")
            warnings.filterwarnings("ignore", message=".*have no effect in the current local runner")
            runner = local.SubprocessRunner(use_venv=False)
            local.init(runner=runner, pipeline_root=str(root), raise_on_error=False)
            try:
                with _python_in_command_only():
                    pipeline(**arguments)  # type: ignore[operator]
            finally:
                builtins.print = real_print
    seconds = time.perf_counter() - t0
    new_runs = sorted((p for p in set(root.iterdir()) - before if p.name.startswith(name)),
                      key=lambda p: p.stat().st_mtime)
    if tee.failed or not new_runs:
        failed = ", ".join(tee.failed) or "the pipeline"
        text = _ANSI.sub("", log_path.read_text(errors="replace"))
        cause = failure_cause(text)
        raise StageFailed(f"{failed} failed: {cause or 'see the log'}", log_path, "\n".join(text.splitlines()[-40:]))
    run_dir = new_runs[-1]
    return LocalRunResult(run_dir, log_path, seconds, read_outputs(run_dir))


@contextmanager
def _python_in_command_only() -> Iterator[None]:
    """kfp.local (2.17) swaps every 'python3' in a task's command line for this interpreter, arguments
    included, so a bars path such as .../python3.11/site-packages/... reached ingest mangled. Swap it
    in the launcher script only; the user code and the arguments that follow it are left as they are."""
    from kfp.local import subprocess_task_handler as handler

    def replace(full_command: list[str], new_executable: str) -> list[str]:
        out, done = [], False
        for el in full_command:
            out.append(el if done else el.replace("python3", new_executable))
            done = done or ('"$program_path/ephemeral_component.py"' in el and '"$@"' in el)
        return out

    original = handler.replace_python_executable
    handler.replace_python_executable = replace
    try:
        yield
    finally:
        handler.replace_python_executable = original


class StageFailed(RuntimeError):
    """A task of a local run failed: the message is its cause in one line; ``tail`` the log's last lines."""

    def __init__(self, message: str, log_path: Path, tail: str) -> None:
        super().__init__(message)
        self.log_path, self.tail = log_path, tail


_EXCEPTION = re.compile(r"^\s*(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Failed|Exit|Interrupt)):\s?(?P<msg>.*)$")


def failure_cause(log_text: str) -> str | None:
    """The exception that ended the first failed task: the last line of the traceback before the first
    ``finished with status FAILURE`` line, without the exception's module path."""
    lines = log_text.splitlines()
    end = next((i for i, line in enumerate(lines) if "finished with status FAILURE" in line), len(lines))
    for line in reversed(lines[:end]):
        m = _EXCEPTION.match(line)
        if m:
            kind = m["type"].rsplit(".", 1)[-1]
            msg = m["msg"].strip()
            generic = kind in ("ValueError", "BarValidationError", "FileNotFoundError", "RuntimeError")
            return msg if generic and msg else f"{kind}: {msg}"
    return None
