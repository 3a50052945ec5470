"""The one waiting loop: how often it asks, when it gives up, what it says then."""

from __future__ import annotations

import pytest

from bqx.ack.kube import describe
from bqx.polling import intervals, poll


def test_intervals_grow_by_half_up_to_a_minute_and_stop_at_the_timeout() -> None:
    got = intervals(10, 300)
    assert got[:3] == [10, 15, 22.5]
    assert max(got) == 60
    assert sum(got[:-1]) < 300 <= sum(got)
    assert intervals(5, 0) == []


def test_poll_returns_the_first_finished_state_and_sleeps_between_asks() -> None:
    states, slept = iter(["Creating", "Creating", "InService"]), []
    assert poll(lambda: next(states), lambda s: s == "InService", lambda s: RuntimeError(s), 2, 100,
                slept.append) == "InService"
    assert slept == [2, 3]


def test_poll_names_the_last_state_on_timeout_and_lets_failures_through() -> None:
    calls = []

    def state() -> int:
        calls.append(1)
        return len(calls)

    with pytest.raises(TimeoutError, match="last state 4"):
        poll(state, lambda s: False, lambda s: TimeoutError(f"last state {s}"), 10, 40, lambda s: None)
    assert len(calls) == len(intervals(10, 40)) + 1

    def failed(s: int) -> bool:
        raise ValueError("Failed: OOM")

    with pytest.raises(ValueError, match="OOM"):
        poll(lambda: 1, failed, lambda s: TimeoutError(), 1, 10, lambda s: None)


def test_describe_names_the_status_of_every_kind() -> None:
    obj = {"status": {"hyperParameterTuningJobStatus": "InProgress",
                      "conditions": [{"type": "ACK.ResourceSynced", "status": "False"}]}}
    assert describe(obj) == "InProgress, not synced"
    assert describe({"status": {"endpointStatus": "Creating"}}).startswith("Creating")
    assert "is the ACK SageMaker controller running" in describe({})
