"""One-line progress messages from stages; ``bqx run --local`` echoes them to the terminal.

A stage's line ends with what its task cost: the stage's own work (from :func:`work_started`, which
:func:`bqx.pair_status.run_isolated` calls), the whole task process (Python start-up, imports, the KFP
executor), the processor time the task used (user and system, with the subprocesses it waited for,
such as the training entrypoint) and its peak RSS, so a slow run shows where its time went, and
whether a task waited for a core or did more work; ``bench/pipeline.py`` sums them.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import time

MARK = "[bqx] "
COST = re.compile(r"\(work (?P<work>[\d.]+) s, task (?P<task>[\d.]+) s, cpu (?P<cpu>[\d.]+) s, "
                  r"peak (?P<peak>[\d.]+) GB\)$")
_work_started: float | None = None


def work_started() -> None:
    """The stage's own work starts now (its imports and inputs are ready)."""
    global _work_started
    _work_started = time.monotonic()


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), None where that is not known."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """User and system time of this process and of the children it has waited for."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def cost() -> str:
    """" (work W s, task T s, cpu C s, peak P GB)", or "" before work_started or off Linux."""
    age = process_age()
    if _work_started is None or age is None:
        return ""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    return (f" (work {time.monotonic() - _work_started:.1f} s, task {age:.1f} s, cpu {cpu_seconds():.1f} s, "
            f"peak {peak:.2f} GB)")


def say(stage: str, subject: str, text: str) -> None:
    print(f"{MARK}{stage:<7} {subject:<7} {text}{cost()}", file=sys.stdout, flush=True)
