"""Which attempt of a cloud training job to use: the first one that has not failed.

A job's first attempt has the deterministic name of its inputs; one that failed or was stopped in an
earlier run is retried under ``-a2``, ``-a3`` ... up to ``aws.max_attempts``. The sagemaker backend looks
attempts up with DescribeTrainingJob, the ack backend as ``TrainingJob`` resources, batch prediction
with DescribeTransformJob; the rule is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bqx.train.local import TrainingFailed

T = TypeVar("T")


def attempt_name(base: str, attempt: int) -> str:
    """The first attempt keeps the deterministic name; later ones add ``-a{n}`` (63 characters at most)."""
    return base if attempt == 1 else f"{base}-a{attempt}"


def current_attempt(base: str, max_attempts: int, lookup: Callable[[str], T | None], failed: Callable[[T], bool],
                    why: Callable[[T], str], what: str = "training job",
                    failure: type[Exception] = TrainingFailed) -> tuple[str, T | None]:
    """The first attempt whose job is absent (None from ``lookup``) or has not failed, with what lookup
    found; after ``max_attempts`` failed ones the pair fails (``failure``) with ``why`` of the last."""
    last = None
    for attempt in range(1, max_attempts + 1):
        name = attempt_name(base, attempt)
        got = lookup(name)
        if got is None or not failed(got):
            return name, got
        last = got
    assert last is not None
    raise failure(f"{what} {base} failed {max_attempts} times (aws.max_attempts); the last, {why(last)}")
