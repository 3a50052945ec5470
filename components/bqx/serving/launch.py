"""Start an inference server as a child process and wait until it answers ``GET /ping``: ``bqx serve``
on this machine or the serve image in a container (any command), for the tests, the benchmarks and
the container checks. Stopped with SIGTERM on exit, as SageMaker stops a container."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bqx_serve(port: int, *flags: str, host: str | None = "127.0.0.1") -> list[str]:
    """The command line of ``bqx serve`` on ``port`` in this Python (``host`` None: its default)."""
    where = ["--host", host] if host else []
    return [sys.executable, "-m", "bqx.cli", "serve", *where, "--port", str(port), *flags]


@dataclass
class Running:
    url: str
    proc: subprocess.Popen

    def output(self) -> str:
        """What the server printed (after it stopped)."""
        return self.proc.stdout.read() if self.proc.stdout else ""


def _pinged(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/ping", timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def started(command: Sequence[str], url: str, env: dict[str, str] | None = None, timeout_s: float = 60,
            quiet: bool = False) -> Iterator[Running]:
    """Run ``command`` until the block ends; RuntimeError with its output if it never answers /ping."""
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    proc = subprocess.Popen(list(command), env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            text=True)
    running = Running(url, proc)
    deadline = time.monotonic() + timeout_s
    while not _pinged(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{' '.join(command[:6])} did not answer {url}/ping: {running.output()[-2000:]}")
        time.sleep(0.1)
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
