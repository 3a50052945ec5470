"""One waiting loop for everything bqx waits on in the cloud: SageMaker jobs, endpoints, ACK resources.

``poll`` asks for the state, lets ``finished`` decide (it raises for a failure it recognises), and sleeps
between asks with an interval that grows by half each time up to a minute, so a short job is seen soon
and a long one costs few calls. After ``timeout_s`` of sleeping the caller's ``timed_out`` names what the
thing last reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
MAX_INTERVAL_S = 60.0


def intervals(poll_s: float, timeout_s: float) -> list[float]:
    """The sleeps ``poll`` makes before it gives up (their sum is the first to reach ``timeout_s``)."""
    out, waited, interval = [], 0.0, poll_s
    while waited < timeout_s:
        out.append(interval)
        waited += interval
        interval = min(interval * 1.5, MAX_INTERVAL_S)
    return out


def poll(state: Callable[[], T], finished: Callable[[T], bool], timed_out: Callable[[T], Exception],
         poll_s: float, timeout_s: float, sleep: Callable[[float], None] = time.sleep) -> T:
    """The first state ``finished`` accepts; ``timed_out(last state)`` is raised once ``timeout_s`` passed."""
    for interval in [*intervals(poll_s, timeout_s), None]:
        got = state()
        if finished(got):
            return got
        if interval is None:
            raise timed_out(got)
        sleep(interval)
    raise AssertionError("unreachable")  # pragma: no cover
