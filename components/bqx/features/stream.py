"""Carried state for the few feature primitives whose value depends on the whole history.

Almost every feature is a function of a trailing window of rows, so computing a table on the last
``L`` rows (``L`` >= its lookback) gives the exact value for the last row. Two primitives are not:
the recursive averages (:func:`bqx.features.rolling.ewm`, so EMA and Wilder smoothing) and
:func:`bqx.features.rolling.rows_since`. The online engine runs a table's ordinary ``compute`` on its
tail inside a :class:`Stream`:

* ``record``: the first, full-history run keeps each such call's last ``L`` outputs, in call order;
* ``replay``: each later run (one new row) returns, for the k-th such call, the kept outputs shifted
  by one plus the new last value from the carried state and the new input. Every earlier output is
  the batch value, so whatever the family computes from them is exact too.

Outside a stream the primitives run their batch code unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Slot:
    kind: str
    history: np.ndarray  # the call's last L outputs
    started: bool = False  # ewm: has it seen its first valid input


@dataclass
class Stream:
    length: int  # L: rows kept per call (the tail length the family is computed on)
    recording: bool = True
    slots: list[Slot] = field(default_factory=list)
    cursor: int = 0

    def next_slot(self, kind: str) -> Slot:
        if self.cursor >= len(self.slots) or self.slots[self.cursor].kind != kind:
            raise RuntimeError(f"stream replay out of step at call {self.cursor} ({kind}): the family's "
                               "sequence of stateful calls differs from the recorded run")
        slot = self.slots[self.cursor]
        self.cursor += 1
        return slot


_ACTIVE: ContextVar[Stream | None] = ContextVar("bqx_feature_stream", default=None)


def active() -> Stream | None:
    return _ACTIVE.get()


@contextmanager
def running(stream: Stream) -> Iterator[Stream]:
    """Compute inside ``stream``; after a record it switches to replay, and every replay must make
    exactly the recorded calls."""
    stream.cursor = 0
    token = _ACTIVE.set(stream)
    try:
        yield stream
    finally:
        _ACTIVE.reset(token)
    if not stream.recording and stream.cursor != len(stream.slots):
        raise RuntimeError(f"stream replay made {stream.cursor} stateful calls; the record made {len(stream.slots)}")
    stream.recording = False


def stateful(kind: str, x: np.ndarray, batch: Callable[[], np.ndarray],
             step: Callable[[Slot, np.ndarray], float]) -> np.ndarray:
    """Run ``batch`` (outside a stream or when recording) or advance the call's slot by one row."""
    st = active()
    if st is None:
        return batch()
    if st.recording:
        out = batch()
        keep = np.full(st.length, np.nan)
        tail = out[-st.length:]
        keep[st.length - len(tail):] = tail
        st.slots.append(Slot(kind, keep, started=bool(np.isfinite(x).any())))
        return out
    slot = st.next_slot(kind)
    if len(x) != st.length:
        raise RuntimeError(f"stream replay: input of {len(x)} rows, the stream keeps {st.length}")
    new = step(slot, x)
    slot.history = np.append(slot.history[1:], new)
    return slot.history.copy()
