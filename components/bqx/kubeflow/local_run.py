"""``bqx run --local``: the whole pipeline on this machine through ``kfp.local.SubprocessRunner``.

Every stage runs as the same KFP component it is on a cluster, in a subprocess of this Python (no
venv, no containers). Each run has its own directory, ``{out}/runs/{run id}/``, with its log
(``run.log``), kfp.local's outputs, and ``run.json``, written last and atomically: a directory without
it is a run that did not finish. ``{out}/latest`` points at the newest run that succeeded, swapped
atomically, so it never shows half a run. The terminal gets one line per stage as it starts and ends,
and at the end where every output went.

Kills leave nothing behind: kfp.local runs in a child process that leads its own process group, and
every stage process is in that group. SIGTERM or SIGINT stops the group and ends with one line and
exit status 128 + the signal; if this process is killed outright (SIGKILL), the kernel tells the child
(``PR_SET_PDEATHSIG``), which stops the group, so no stage goes on writing into ``{out}``.
"""

from __future__ import annotations

import builtins
import dataclasses
import fcntl
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass
from pathlib import Path

from bqx.config import Settings
from bqx.io import read_json, write_json
from bqx.kubeflow import prefork
from bqx.progress import MARK

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROGRESS_MARK = MARK  # stages print one line with this mark when they finish (bqx.progress.say)
_END = re.compile(r"Task '?(?P<task>[\w\-]+)'? finished with status (?P<status>\w+)")


class _ProgressTee(io.TextIOBase):
    """Write everything to the log; echo stage progress lines and failed tasks to the terminal.

    kfp.local runs a ParallelFor's tasks in threads that all print here; writes are serialised, since
    a text file written from two threads at once can lose lines or (CPython 3.11) write stray bytes."""

    def __init__(self, log: io.TextIOBase, term: io.TextIOBase, t0: float) -> None:
        self.log, self.term, self.t0 = log, term, t0
        self.buf = ""
        self.failed: list[str] = []
        self.lock = threading.RLock()

    def write(self, s: str) -> int:
        with self.lock:
            self.log.write(s)
            self.buf += s
            while "\n" in self.buf:
                line, self.buf = self.buf.split("\n", 1)
                self._scan(_ANSI.sub("", line))
        return len(s)

    def _scan(self, line: str) -> None:
        elapsed = f"[{time.perf_counter() - self.t0:6.1f}s]"
        if (m := _END.search(line)) and m["status"] != "SUCCESS":
            if m["task"] in self.failed:  # the ParallelFor and the pipeline repeat a failed task's line
                return
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


@dataclass(frozen=True)
class Runner:
    """How kfp.local runs each task: ``subprocess`` (this Python, the default) or ``docker`` (every task in
    its stage image, ``{registry}/bqx-{stage}:{tag}``, through the Docker Engine API at DOCKER_HOST)."""

    kind: str = "subprocess"
    registry: str = ""  # "" = bqx.kubeflow.images.REGISTRY
    tag: str = ""  # "" = bqx.kubeflow.images.TAG

    def __post_init__(self) -> None:
        if self.kind not in ("subprocess", "docker"):
            raise ValueError(f"--runner {self.kind!r}: subprocess or docker")


def run_local(source: str | Path, out_dir: str | Path, settings: Settings, pairs: list[str] | None = None,
              echo: io.TextIOBase | None = None, train_backend: str = "local",
              deploy_backend: str = "local", runner: Runner = Runner()) -> LocalRunResult:
    """Run the training pipeline through kfp.local; raise RuntimeError naming the failed task(s) and the log."""
    return _supervised("train", out_dir, echo, runner, source=_where(source),
                       pairs=list(pairs or settings.features.pairs),
                       settings_json=settings.to_json(), train_backend=train_backend, deploy_backend=deploy_backend)


def run_local_drift(source: str | Path, model_repository: str | Path, out_dir: str | Path, settings: Settings,
                    pairs: list[str] | None = None, echo: io.TextIOBase | None = None,
                    runner: Runner = Runner(), prediction_log: str | Path = "", apply_ab: bool = False
                    ) -> LocalRunResult:
    """Run the recurring drift pipeline (bqx-drift) through kfp.local against a model repository (with
    ``prediction_log``, drift of what was served and the verdict on a running A/B test)."""
    return _supervised("drift", out_dir, echo, runner, source=_where(source),
                       model_repository=_where(model_repository), pairs=list(pairs or settings.features.pairs),
                       settings_json=settings.to_json(), apply_ab=apply_ab,
                       prediction_log=_where(prediction_log) if prediction_log else "")


def run_local_predict(source: str | Path, model_repository: str | Path, out_dir: str | Path, settings: Settings,
                      pairs: list[str] | None = None, since: str = "", echo: io.TextIOBase | None = None,
                      runner: Runner = Runner()) -> LocalRunResult:
    """Run batch prediction (bqx-predict) through kfp.local against a model repository."""
    return _supervised("predict", out_dir, echo, runner, source=_where(source),
                       model_repository=_where(model_repository), pairs=list(pairs or settings.features.pairs),
                       settings_json=settings.to_json(), since=since)


def _where(location: str | Path) -> str:
    return str(location) if str(location).startswith("s3://") else str(Path(location).resolve())


def _pipeline(kind: str, runner: Runner, run_dir: Path) -> tuple[object, str]:
    """The pipeline to run: its Python function for the subprocess runner; for containers, the pipeline
    compiled with the runner's image references and loaded back, exactly what a cluster would run."""
    from bqx.kubeflow.pipelines import PIPELINES

    name, func = PIPELINES[kind]
    if runner.kind == "subprocess":
        return func, name
    from kfp import components

    from bqx.kubeflow.compile import compile_pipeline

    compiled = compile_pipeline(run_dir / f"{name}.yaml", kind, runner.registry or None, runner.tag or None)
    return components.load_component_from_file(str(compiled)), name


# -- the supervisor (this process) ---------------------------------------------------------------------
RUNS = "runs"
LATEST = "latest"
RUN_RECORD = "run.json"  # written last: its presence marks a finished run
_OUTCOME = "outcome.json"  # the child's answer to the supervisor
_LOCK = ".lock"  # held while the run is going


class Interrupted(RuntimeError):
    """The run was stopped by a signal: every stage process stopped, the run directory left incomplete."""

    def __init__(self, signum: int, run_dir: Path, seconds: float) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after {seconds:.0f} s; every stage process was stopped. The run's "
                         f"partial outputs stay in {run_dir} (no {RUN_RECORD}: incomplete); a new run starts afresh")
        self.exit_code = 128 + signum


def unfinished_runs(out_dir: str | Path) -> list[Path]:
    """Run directories with no run.json whose supervisor is gone (killed), oldest first."""
    found = []
    for d in sorted((Path(out_dir) / RUNS).glob("*/")):
        if (d / RUN_RECORD).exists():
            continue
        try:
            with open(d / _LOCK, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody runs it any more
        except BlockingIOError:
            continue
        except OSError:
            pass
        found.append(d)
    return found


def _supervised(kind: str, out_dir: str | Path, echo: io.TextIOBase | None, runner: Runner, **arguments: object
                ) -> LocalRunResult:
    term = echo or sys.stdout
    out = Path(out_dir).resolve()
    stale = unfinished_runs(out)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{os.getpid() % 100000:05d}"
    run_dir = out / RUNS / run_id
    run_dir.mkdir(parents=True)
    if stale:
        term.write(f"note: {len(stale)} earlier run(s) under {out / RUNS} did not finish (killed): "
                   f"{', '.join(d.name for d in stale)}; nothing of theirs is reused\n")
    how = "" if runner.kind == "subprocess" else " (every task in its stage image)"
    term.write(f"run {run_id}: log and outputs in {run_dir}{how}\n")
    term.flush()
    write_json({"kind": kind, "runner": dataclasses.asdict(runner), "arguments": arguments}, run_dir / "spec.json")
    t0 = time.perf_counter()
    with open(run_dir / _LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        child = subprocess.Popen([sys.executable, "-m", "bqx.kubeflow.local_run", str(run_dir)], stdout=subprocess.PIPE,
                                 text=True, bufsize=1, start_new_session=True,
                                 env={**os.environ, "BQX_SUPERVISOR_PID": str(os.getpid())})
        with _stopping_group_on_signals(child.pid) as stopped:
            assert child.stdout is not None
            for line in child.stdout:
                term.write(line)
                term.flush()
            child.wait()
        if runner.kind == "docker":
            stop_containers(run_id)  # normally none: the runner removes its own on the way out
        if stopped:
            raise Interrupted(stopped[0], run_dir, time.perf_counter() - t0)
        return _finish(out, run_dir, child.returncode, time.perf_counter() - t0)


@contextmanager
def _stopping_group_on_signals(pgid: int) -> Iterator[list[int]]:
    """While the block runs, SIGTERM and SIGINT stop the runner (which removes its containers and stops its
    process group); the list gets the signal. Whatever of the group is left is killed on the way out."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread
        yield caught
        return

    def kill() -> None:
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def stop(signum: int, frame: object) -> None:
        caught.append(signum)
        with suppress(ProcessLookupError):
            os.kill(pgid, signal.SIGTERM)  # the runner leads the group: its handler stops the rest
        timer = threading.Timer(20.0, kill)  # a runner that does not stop in time is killed with its group
        timer.daemon = True
        timer.start()

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield caught
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        kill()  # nothing of the group outlives the run


def _finish(out: Path, run_dir: Path, returncode: int, seconds: float) -> LocalRunResult:
    log_path = run_dir / "run.log"
    if not (run_dir / _OUTCOME).exists():
        raise RuntimeError(f"the local runner exited with status {returncode} before the pipeline ended; "
                           f"see {log_path}")
    outcome = read_json(run_dir / _OUTCOME)
    record = {"status": "succeeded" if outcome["ok"] else "failed", "seconds": round(seconds, 1),
              "pipeline_run": outcome.get("run_dir"), "cause": outcome.get("message")}
    write_json({k: v for k, v in record.items() if v is not None}, run_dir / RUN_RECORD)
    if not outcome["ok"]:
        raise StageFailed(outcome["message"], log_path, outcome["tail"])
    tmp = out / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(run_dir.relative_to(out), tmp)
    os.replace(tmp, out / LATEST)
    kfp_run = Path(outcome["run_dir"])
    return LocalRunResult(kfp_run, log_path, seconds, read_outputs(kfp_run))


# -- the runner (a child process leading its own process group) ------------------------------------------
def _die_with_parent(parent: int, stop: Callable[[int, object], None]) -> None:
    """SIGTERM when the supervisor dies (Linux ``PR_SET_PDEATHSIG``); its handler then stops the group."""
    prefork.signal_on_parent_death(signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before the request took effect
        stop(signal.SIGTERM, None)


def _runner(run_dir: Path) -> int:
    spec = read_json(run_dir / "spec.json")
    runner = Runner(**spec["runner"])

    def stop(signum: int, frame: object) -> None:
        if runner.kind == "docker":
            stop_containers(run_dir.name)
        os.killpg(os.getpgrp(), signal.SIGKILL)  # this process and every stage process it started

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _die_with_parent(int(os.environ.get("BQX_SUPERVISOR_PID", os.getppid())), stop)
    os.environ["BQX_TASK_RETRIES"] = "0"  # on one machine a failure is not transient: no retries, no backoff sleeps
    pipeline, name = _pipeline(spec["kind"], runner, run_dir)
    try:
        result = _run(pipeline, name, run_dir, sys.stdout, runner, **spec["arguments"])
        outcome: dict = {"ok": True, "run_dir": str(result.run_dir)}
    except StageFailed as err:
        outcome = {"ok": False, "message": str(err), "tail": err.tail}
    write_json(outcome, run_dir / _OUTCOME)
    return 0


def _run(pipeline: object, name: str, run_dir: Path, term: io.TextIOBase, runner: Runner, **arguments: object
         ) -> LocalRunResult:
    from kfp import local

    log_path = run_dir / "run.log"
    t0 = time.perf_counter()
    real_print = builtins.print  # kfp.local swaps print for an indenting one and may leave it behind
    with open(log_path, "w") as log:
        tee = _ProgressTee(log, term, t0)
        with warnings.catch_warnings(), redirect_stdout(tee):
            # kfp warns that our stage images are not python:* images; here they run in this Python.
            warnings.filterwarnings("ignore", message="You may be attemping to run a task")
            warnings.filterwarnings("ignore", message=".*have no effect in the current local runner")
            local.init(runner=_kfp_runner(runner, run_dir, arguments), pipeline_root=str(run_dir),
                       raise_on_error=False)
            try:
                with _python_in_command_only(), _task_outputs_into_loops(), \
                        _forked_tasks(runner, run_dir, str(arguments.get("settings_json") or "{}")):
                    pipeline(**arguments)  # type: ignore[operator]
            finally:
                builtins.print = real_print
    seconds = time.perf_counter() - t0
    runs = sorted((p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith(name)),
                  key=lambda p: p.stat().st_mtime)
    if tee.failed or not runs:
        failed = ", ".join(tee.failed) or "the pipeline"
        text = _ANSI.sub("", log_path.read_text(errors="replace"))
        cause = failure_cause(text)
        raise StageFailed(f"{failed} failed: {cause or 'see the log'}", log_path, "\n".join(text.splitlines()[-40:]))
    return LocalRunResult(runs[-1], log_path, seconds, [])


IMAGE_USER = (1000, 1000)  # the user every stage image runs as (images/Dockerfile)
RUN_LABEL = "bqx.run"  # containers of a run carry its run id, so a stopped run can remove them


def _kfp_runner(runner: Runner, run_dir: Path, arguments: dict) -> object:
    """kfp.local's runner. DockerRunner mounts only the pipeline root, so the smallest additions: the local
    inputs (bars, model repository) bind-mounted read-only at the same paths, the BQX_*/AWS_* settings of
    this process as environment, a label with the run id, and file ownership that lets the image's user
    write into the run directory (the invoking user's uid, or as root the image's own user). Tasks run
    with no capabilities and no privilege escalation, as the manifests' pods do."""
    from kfp import local

    if runner.kind == "subprocess":
        return local.SubprocessRunner(use_venv=False)
    from docker.types import Mount
    from kfp.local import docker_task_handler

    docker_task_handler.run_docker_container = _run_container  # this process runs this one pipeline only

    inputs = sorted({str(v) for k, v in arguments.items() if k in ("source", "model_repository")
                     and not str(v).startswith("s3://")})
    env = {k: v for k, v in os.environ.items() if k.startswith(("BQX_AWS_", "AWS_"))}
    mounts = [Mount(target=p, source=p, type="bind", read_only=True) for p in inputs]
    registry_dir = json.loads(arguments.get("settings_json") or "{}").get("registry", {}).get("uri", "")
    if registry_dir and "://" not in registry_dir:  # the model registry outlives the run: writable, same path
        Path(registry_dir).mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            os.chown(registry_dir, *IMAGE_USER)
        mounts.append(Mount(target=registry_dir, source=registry_dir, type="bind", read_only=False))
    options: dict = {"mounts": mounts,
                     "environment": env, "labels": {RUN_LABEL: run_dir.name},
                     "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
                     # On a cluster a task's command replaces the image's ENTRYPOINT (bqx, for SageMaker's
                     # `<image> train|serve`); DockerRunner passes it as Docker's CMD, which would be appended
                     # to the entrypoint, so the entrypoint is reset here.
                     "entrypoint": [""]}
    if os.getuid() == 0:
        os.chown(run_dir, *IMAGE_USER)
    else:
        options["user"] = f"{os.getuid()}:{os.getgid()}"
    endpoint = env.get("BQX_AWS_ENDPOINT_URL", env.get("AWS_ENDPOINT_URL", ""))
    if "://127." in endpoint or "://localhost" in endpoint:
        options["network_mode"] = "host"  # a local AWS stand-in is only reachable from the host's network
    return local.DockerRunner(**options)


def _run_container(client: object, image: str, command: list[str], volumes: dict, **run_args: object) -> int:
    """kfp.local's ``run_docker_container`` with the task's real exit status. kfp starts the container with
    ``auto_remove`` and, when the container is gone before ``wait`` answers, assumes it succeeded; podman
    removes an exited container at once, so every failed task read as SUCCESS (and podman answers 500, not
    404, for a removed container). Here the container is removed only after its status is read."""
    import docker

    print(f"Found image {image!r}\n")
    container = client.containers.run(image=image, command=command, detach=True, stdout=True,  # type: ignore
                                      stderr=True, volumes=volumes, auto_remove=False, **run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        with suppress(docker.errors.APIError):
            container.remove(force=True)


def stop_containers(run_id: str) -> int:
    """Remove the containers of a run (a stopped docker-runner run); how many there were."""
    try:
        import docker

        client = docker.from_env()
        found = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
        for c in found:
            with suppress(docker.errors.APIError):
                c.remove(force=True)
        return len(found)
    except Exception:  # noqa: BLE001 - no engine, no SDK: nothing of ours can be running there
        return 0


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


@contextmanager
def _forked_tasks(runner: Runner, run_dir: Path, settings_json: str | None = None
                  ) -> Iterator[prefork.Prefork | None]:
    """With the subprocess runner, tasks are forked from a process that has the stages' imports done
    and the feature kernels warmed with the run's settings (:mod:`bqx.kubeflow.prefork`) instead of each
    starting a cold Python; its own lines go to
    ``prefork.log`` in the run directory. ``BQX_PREFORK=0`` starts every task as a subprocess. Yields
    the server, or None when there is none."""
    if runner.kind != "subprocess" or os.environ.get("BQX_PREFORK", "1") == "0" or not prefork.supported():
        yield None
        return
    from kfp.local import subprocess_task_handler as handler

    server = prefork.Prefork(run_dir / "prefork.log", settings_json)
    original = handler.run_local_subprocess

    def run(full_command: list[str], env_vars: dict[str, str] | None = None) -> int:
        code = server.run(full_command, env_vars, lambda line: print(line, end=""))
        if code is None:
            return original(full_command=full_command, env_vars=env_vars)
        print("\n")  # as kfp.local ends a task's lines
        return code

    handler.run_local_subprocess = run
    try:
        yield server
    finally:
        handler.run_local_subprocess = original
        server.close()


@contextmanager
def _task_outputs_into_loops() -> Iterator[None]:
    """kfp.local (2.17) gives every input of a ParallelFor that comes from an upstream task's output the
    loop item instead (an extract task got ``settings_json="usdjpy"``, not ingest's settings for it). The
    backend resolves them as outputs; here each iteration keeps them as outputs as well, and only the item
    input (which kfp.local sets explicitly) is the item."""
    from kfp.local.orchestrator import enhanced_dag_orchestrator as orchestrator

    original = orchestrator.task_spec_utils.create_parameter_loop_iteration_task_spec

    def iteration(task_spec: object, loop_item: object, loop_task_name: str) -> object:
        spec = original(task_spec, loop_item, loop_task_name)
        item = task_spec.parameter_iterator.item_input  # type: ignore[attr-defined]
        for name, given in task_spec.inputs.parameters.items():  # type: ignore[attr-defined]
            if name != item and given.HasField("task_output_parameter"):
                spec.inputs.parameters[name].CopyFrom(given)
        return spec

    orchestrator.task_spec_utils.create_parameter_loop_iteration_task_spec = iteration
    try:
        yield
    finally:
        orchestrator.task_spec_utils.create_parameter_loop_iteration_task_spec = original


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


if __name__ == "__main__":
    sys.exit(_runner(Path(sys.argv[1])))
