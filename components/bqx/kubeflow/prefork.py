"""``bqx run --local``'s tasks forked from one warm process instead of each starting a cold Python.

kfp.local's subprocess runner starts every task as a new Python that imports kfp, pandas, numba,
CatBoost, matplotlib or Evidently before its work: 0.5 s for the smallest task and 4-5 s for a drift
task (Evidently's import), more than the work itself of most tasks on the sample. The prefork server
imports what the stages import once, then forks one child per task; the child runs kfp's executor on
the task's own command line as the subprocess would (its own process in the run's process group, its
output and exit status handed to kfp.local), so the stage code, its inputs and its isolation from the
other tasks are unchanged. Given the run's settings, the server also runs a short extract after
importing ``bqx.extract``, so every numba function of the features is compiled or loaded once there and
the extract tasks find them ready.

A task runs as a subprocess as before when the server is not listening yet (the server imports in
the background and the first tasks need not wait), when kfp.local would give it environment variables,
when the runner's environment has changed since the server started, when its command is not kfp's
lightweight-component launcher, or when its request cannot reach the server. Only the user that
started the server can reach its socket (a private directory, and the peer's uid checked). Linux only
(``os.pidfd_open``); elsewhere every task is a subprocess.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

# What the stages import, in the order the pipeline reaches them; the server imports these while it
# waits for tasks, so a task forked later finds them loaded. A task that arrives during one import waits
# for it to end: Evidently's own dependencies come first, so its import (about 4.5 s) is paid in parts.
# WARM_KERNELS is not a module: there the server runs a short extract (bqx.extract.warm_extract) with the run's
# settings, so the extract tasks find every numba function compiled and loaded instead of each loading them
# from numba's cache (or, on a machine that has no cache yet, each compiling them).
WARM_KERNELS = "feature kernels"
PRELOAD = ("pandas", "pyarrow.parquet", "bqx.ingest", "bqx.panel", "bqx.pair_status", "bqx.extract", WARM_KERNELS,
           "bqx.lag", "catboost", "bqx.select", "bqx.tune", "bqx.dataset", "bqx.train.run", "bqx.train.evaluate",
           "bqx.pictures", "matplotlib.pyplot", "bqx.drift.run", "scipy.stats", "sklearn", "evidently",
           "evidently.metrics", "bqx.deploy")
LAUNCHER = "kfp.dsl.executor_main"  # the module kfp's lightweight-component command line runs
# imported before the server listens: kfp's executor is every task's first import
FIRST = (LAUNCHER, "bqx.config", "bqx.progress")
_HEADER = struct.Struct("!I")
_STATUS = struct.Struct("!i")


def supported() -> bool:
    return sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


def forkable(full_command: list[str]) -> bool:
    """kfp's launcher for a lightweight component: ``sh -ec <script> <component source> <executor args>``,
    where the script writes the source to a temp file and runs kfp's executor on it (no pip install)."""
    return (len(full_command) >= 4 and full_command[0] == "sh" and full_command[1] in ("-c", "-ec")
            and LAUNCHER in full_command[2] and '"$program_path/ephemeral_component.py"' in full_command[2]
            and "pip install" not in full_command[2])


# -- the client: one per local run, in the process that runs kfp.local ---------------------------------------
class Prefork:
    """Starts the server; :meth:`run` has a task forked by it, or returns None when it should run as a
    subprocess instead."""

    def __init__(self, log_path: Path, settings_json: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="bqx-prefork-")  # mode 0700; short, for the 108-byte socket path limit
        self.path = os.path.join(self.dir, "socket")
        self.env = dict(os.environ)
        argv = [sys.executable, "-m", "bqx.kubeflow.prefork", self.path]
        if settings_json is not None:  # the run's settings, for the feature kernels' warm-up
            argv.append(os.path.join(self.dir, "settings.json"))
            Path(argv[-1]).write_text(settings_json)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(argv,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def run(self, full_command: list[str], env_vars: dict[str, str] | None,
            echo: Callable[[str], object]) -> int | None:
        if env_vars or not forkable(full_command) or dict(os.environ) != self.env or self.proc.poll() is not None:
            return None
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.path)
        except OSError:  # not listening yet (still importing its first modules)
            conn.close()
            return None
        read, write = os.pipe()
        with conn:
            try:
                payload = json.dumps({"argv": full_command, "cwd": os.getcwd()}).encode()
                socket.send_fds(conn, [_HEADER.pack(len(payload))], [write])
                conn.sendall(payload)
            except OSError:  # the server went away before it had the task: nothing ran, start it cold
                os.close(read)
                return None
            finally:
                os.close(write)
            with open(read, encoding="utf-8", errors="replace") as out:  # ends when the task's process ends
                for line in out:
                    echo(line)
            status = _recv_exactly(conn, _STATUS.size)
        if len(status) != _STATUS.size:
            echo("the prefork server stopped before the task's exit status reached it\n")
            return 1
        return _STATUS.unpack(status)[0]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


# -- the server ---------------------------------------------------------------------------------------------
def serve(path: str, settings_path: str | None = None) -> None:
    """Import, listen on ``path``, fork a child per task and send each task's exit status back; import the
    rest of PRELOAD whenever no task is waiting, warming the feature kernels with the settings in
    ``settings_path`` (none: skipped). Dies with its parent (the local runner)."""
    signal_on_parent_death(signal.SIGKILL)
    t0 = time.perf_counter()
    for name in FIRST:
        importlib.import_module(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    listener.listen(64)
    os.rename(path + ".new", path)  # appears only once it accepts connections
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    pending = list(PRELOAD)
    while True:
        events = sel.select(timeout=0 if pending else None)
        if not events and pending:
            name = pending.pop(0)
            try:
                if name == WARM_KERNELS:
                    _warm_kernels(settings_path)
                else:
                    importlib.import_module(name)
            except Exception as err:  # noqa: BLE001 - a stage that needs it fails on its own import, and says so
                print(f"prefork: {name} not preloaded: {type(err).__name__}: {err}", flush=True)
            if not pending:
                gc.freeze()  # the imports' objects stay out of the children's collections: fewer pages copied
                print(f"prefork: stage imports ready in {time.perf_counter() - t0:.1f} s", flush=True)
            continue
        for key, _ in events:
            if key.fileobj is listener:
                _accept(listener, sel)
            else:
                pidfd, (pid, conn) = key.fd, key.data
                sel.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError), conn:
                    conn.sendall(_STATUS.pack(os.waitstatus_to_exitcode(status)))


def _warm_kernels(settings_path: str | None) -> None:
    if settings_path is None:
        return
    from bqx.config import Settings
    from bqx.extract import warm_extract

    seconds = warm_extract(Settings.from_json(Path(settings_path).read_text()))
    print(f"prefork: feature kernels ready in {seconds:.1f} s", flush=True)


def _accept(listener: socket.socket, sel: selectors.BaseSelector) -> None:
    conn, _ = listener.accept()
    try:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        msg, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 1)
        if uid != os.getuid() or len(msg) != _HEADER.size or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        request = json.loads(_recv_exactly(conn, _HEADER.unpack(msg)[0]))
    except (OSError, ValueError):
        conn.close()
        return
    out = fds[0]
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # the task
        code = 1
        try:
            listener.close()
            conn.close()
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.close(out)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
            signal_on_parent_death(signal.SIGKILL)
            if "numpy" in sys.modules:  # numpy's global generator, freshly seeded as in a new Python
                sys.modules["numpy"].random.seed()
            os.chdir(request["cwd"])
            code = execute(request["argv"])
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(out)
    sel.register(os.pidfd_open(pid), selectors.EVENT_READ, (pid, conn))


def execute(argv: list[str]) -> int:
    """What kfp's launcher script does, in this process: the component's source to a temp file, then
    kfp's executor with the task's arguments. The exit status a ``python -m`` run would have."""
    import logging

    from kfp.dsl import executor_main

    script, source, args = argv[2], argv[3], argv[4:]
    if "_KFP_RUNTIME=true" in script:
        os.environ["_KFP_RUNTIME"] = "true"
    program = tempfile.mkdtemp()
    try:
        module = os.path.join(program, "ephemeral_component.py")
        with open(module, "w") as fh:
            fh.write(source)
        sys.argv = [executor_main.__file__, "--component_module_path", module, *args]
        executor_main.executor_main()
        return 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - as an uncaught exception ends a Python: traceback, status 1
        traceback.print_exc()
        return 1
    finally:
        logging.shutdown()
        shutil.rmtree(program, ignore_errors=True)


def signal_on_parent_death(sig: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux ``PR_SET_PDEATHSIG``;
    nothing elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, sig, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
