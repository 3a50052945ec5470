"""Bars in a raw-bars request: parsed, checked (one pass over every pair's new minute) and held as
arrays, one :class:`RequestBars` per pair, for the engines (:mod:`bqx.serving.engine`) and the market."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from bqx.bars import OPTIONAL_COLUMNS, PRICE_COLUMNS, BarValidationError, check_many, check_rows, validate_bars
from bqx.pairs import PAIRS
from bqx.serving.payload import PayloadError


@dataclass(frozen=True)
class RequestBars:
    """One pair's bars from a request, validated: UTC ns times and float columns."""

    ns: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ns)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"ts_utc": pd.DatetimeIndex(self.ns.astype("datetime64[ns]"), tz="UTC"), **self.values})

    def bar(self, i: int) -> dict[str, float]:
        return {k: float(v[i]) for k, v in self.values.items()}

    def then(self, later: RequestBars, keep: int) -> RequestBars:
        """These bars followed by the rows of ``later`` after them, the newest ``keep`` rows at most."""
        new = later.ns > self.ns[-1]
        cols = sorted(set(self.values) | set(later.values))
        ns = np.concatenate([self.ns, later.ns[new]])[-keep:]
        values = {c: np.concatenate([self.values.get(c, np.full(len(self.ns), np.nan)),
                                     later.values.get(c, np.full(len(later.ns), np.nan))[new]])[-keep:]
                  for c in cols}
        return RequestBars(ns, values)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BAR_COLUMNS = frozenset((*PRICE_COLUMNS, *OPTIONAL_COLUMNS))


def _plain_rows(lists: list[object]) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray] | None:
    """The common case parsed without pandas, several series' bars end to end: ISO 8601 strings with an
    offset, numbers for every column, the same columns in every bar. Returns the times, the columns and
    each series' first row; None for anything else (the pandas path then names the problem)."""
    if not lists or not all(isinstance(raw, list) and raw and isinstance(raw[0], dict) for raw in lists):
        return None
    first = lists[0][0]  # type: ignore[index]
    cols = [c for c in (*PRICE_COLUMNS, *OPTIONAL_COLUMNS) if c in first]
    present = set(cols)
    ns: list[int] = []
    values: list[list[float]] = [[] for _ in cols]
    starts = []
    for raw in lists:
        starts.append(len(ns))
        for b in raw:  # type: ignore[union-attr]
            if not isinstance(b, dict):
                return None
            ts = b.get("ts_utc")
            if not isinstance(ts, str) or b.keys() & _BAR_COLUMNS != present:
                return None
            try:
                when = datetime.fromisoformat(ts)
            except ValueError:
                return None
            if when.tzinfo is None:
                return None
            delta = when - _EPOCH
            ns.append((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000)
            for j, c in enumerate(cols):
                v = b[c]
                if type(v) not in (int, float):
                    return None
                values[j].append(v)
    return (np.array(ns, dtype=np.int64), {c: np.array(v, dtype=np.float64) for c, v in zip(cols, values, strict=True)},
            np.array(starts, dtype=np.int64))


def _plain_bars(raw: list[dict]) -> RequestBars | None:
    got = _plain_rows([raw])
    return None if got is None else RequestBars(got[0], got[1])


def parse_bars(raw: object, pair: str, checked: bool = True) -> RequestBars:
    """The request's bars, validated by the same rules as bar files (``checked`` False: the common
    form parsed but its row rules left to :func:`parse_market_bars`); 400 naming the row and field of
    the first problem."""
    if not isinstance(raw, list) or not raw or not all(isinstance(b, dict) for b in raw):
        raise PayloadError(400, "'bars' must be a non-empty list of objects {ts_utc, open, high, low, close[, volume]}")
    try:
        plain = _plain_bars(raw)
        if plain is not None:
            if checked:
                check_rows(plain.ns, plain.values, "request", pair)
            return plain
        frame = validate_bars(pd.DataFrame(raw), "request", pair)
    except BarValidationError as exc:
        raise PayloadError(400, f"bars: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(400, f"bars: {exc}") from None
    return RequestBars(pd.DatetimeIndex(frame["ts_utc"]).asi8,
                       {c: frame[c].to_numpy(dtype=np.float64) for c in frame.columns if c != "ts_utc"})


def parse_market_bars(raw: dict[str, object]) -> dict[str, RequestBars]:
    """Every pair's bars of a ``{pair: [bars]}`` request, the row rules checked over all pairs at once
    (a minute of 28 pairs: one pass instead of 28)."""
    for p in raw:
        if p not in PAIRS:
            raise PayloadError(400, f"bars: {p!r} is not one of the 28 pairs")
    plain = _plain_rows(list(raw.values()))
    if plain is None:  # pair by pair, so the message names the pair
        frames = {p: parse_bars(bars, p, checked=False) for p, bars in raw.items()}
    else:  # every pair's bars parsed into one set of columns: each pair's are views of them
        ns, values, starts = plain
        ends = [*starts[1:], len(ns)]
        frames = {p: RequestBars(ns[a:b], {c: v[a:b] for c, v in values.items()})
                  for p, a, b in zip(raw, starts, ends, strict=True)}
    try:
        check_many({p: (b.ns, b.values) for p, b in frames.items()}, "request", joined=plain)
    except BarValidationError as exc:
        raise PayloadError(400, f"bars: {exc}") from None
    return frames
