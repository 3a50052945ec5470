"""One pair never sinks the others: a per-pair stage that fails records the failure instead of raising.

KFP fails a ParallelFor when any iteration fails, and then nothing after it runs: one pair's bad data
would stop every pair's deployment. So each per-pair stage runs its work through :func:`run_isolated`:
an exception becomes ``status: failed`` with the stage and the reason in the metadata of every output
artifact; a later stage whose input carries that status skips its work and passes the failure on; the
deploy stage publishes the other pairs and names each failed pair and the stage it failed in. A task
killed from outside (eviction, out of memory) still fails and is retried by the pipeline's policy.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence

from bqx.progress import say, work_started

FAILED = "failed"
TEXT_KINDS = ("HTML", "Markdown")  # output artifacts that are a file a person opens: they get the reason


def failure_of(artifacts: Sequence[object]) -> dict | None:
    """The first failure an input artifact carries: ``{"pair", "stage", "reason"}``, or None."""
    for art in artifacts:
        meta = getattr(art, "metadata", None) or {}
        if meta.get("status") == FAILED:
            return {"pair": meta.get("pair"), "stage": meta.get("failed_stage", "?"), "reason": meta.get("reason", "")}
    return None


def mark_failed(outputs: Sequence[object], pair: str, stage: str, reason: str) -> None:
    """Every output artifact says the pair failed (and where); files a person opens say why."""
    for art in outputs:
        kind = type(art).__name__
        if kind == "Metrics":  # numbers only: the UI charts them
            continue
        art.metadata.update({"pair": pair, "status": FAILED, "failed_stage": stage,  # type: ignore[attr-defined]
                             "reason": reason[:2000]})
        path = art.path  # type: ignore[attr-defined]
        if kind in TEXT_KINDS:
            with open(path, "w") as fh:
                fh.write(f"# {pair}: failed at {stage}\n\n{reason}\n")
        else:
            os.makedirs(path, exist_ok=True)  # an (empty) directory where the data would have been


def run_isolated(stage: str, pair: str, inputs: Sequence[object], outputs: Sequence[object],
                 work: Callable[[], None]) -> bool:
    """Run ``work`` unless an input carries a failure; record an exception instead of raising it.
    Returns True when the work ran and succeeded."""
    upstream = failure_of(inputs)
    if upstream is not None:
        mark_failed(outputs, pair, upstream["stage"], upstream["reason"])
        say(stage, pair, f"skipped: failed at {upstream['stage']}")
        return False
    try:
        work_started()
        work()
    except Exception as err:  # noqa: BLE001 - recorded for this pair and shown, never swallowed silently
        reason = f"{type(err).__name__}: {err}"
        traceback.print_exc()  # the whole traceback goes to the task's log
        mark_failed(outputs, pair, stage, reason)
        say(stage, pair, f"FAILED: {reason[:300]}")
        return False
    return True
