"""Reading, validating and normalising bars (1-minute by design; any whole-minute spacing is accepted).

Schema (one file per pair, named ``{pair}.parquet`` or ``{pair}.csv``; CSV comma-separated with a
``.`` decimal point):

- ``ts_utc``: bar open time, timezone-aware UTC, whole minutes, strictly increasing
- ``open high low close``: finite prices > 0 with ``low <= open, close <= high``
- optional ``volume`` (finite, >= 0) and ``bid`` / ``ask`` (quotes at bar close, finite, > 0, bid <= ask)

Every violation raises :class:`BarValidationError` naming the file, pair, row and field of the first
offending row, so a bad file in a run of 28 pairs is found in one step. Rows are 0-based data rows
(the first bar is data row 0); for text files the message adds the file line (1-based, header
included).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.pairs import check_pair

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
OPTIONAL_COLUMNS: tuple[str, ...] = ("volume", "bid", "ask")
SUFFIXES: tuple[str, ...] = (".parquet", ".csv")
_COMMA_DECIMAL = re.compile(r"^-?\d+,\d+$")


class BarValidationError(ValueError):
    """A bar file broke the schema. Carries the file, pair, row (0-based data row), the file line
    (1-based, for text files) and the field."""

    def __init__(self, file: str | Path, pair: str | None, row: int | None, field: str | None, problem: str,
                 line: int | None = None):
        self.file, self.pair, self.row, self.field, self.problem = str(file), pair, row, field, problem
        self.line = line
        where = [f"file {self.file}"]
        if pair is not None:
            where.append(f"pair {pair}")
        if row is not None:
            where.append(f"data row {row}" + (f" (file line {line})" if line is not None else ""))
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"invalid bars: {', '.join(where)}: {problem}")

    def at_lines(self, first_line: int) -> BarValidationError:
        """The same error with the file line added: data row 0 is on file line ``first_line``."""
        line = None if self.row is None else self.row + first_line
        return BarValidationError(self.file, self.pair, self.row, self.field, self.problem, line)


@dataclass(frozen=True)
class BarFile:
    pair: str
    path: Path


def pair_from_path(path: str | Path) -> str:
    """The pair a bar file holds, from its name (``EURUSD.csv``, ``eur_usd.parquet`` -> ``eurusd``)."""
    p = Path(path)
    stem = "".join(ch for ch in p.name.split(".")[0] if ch.isalpha()).lower()
    try:
        return check_pair(stem)
    except ValueError as err:
        raise BarValidationError(p, None, None, None, f"file name does not name a known pair ({err})") from None


def discover(source: str | Path, pairs: Iterable[str] | None = None) -> list[BarFile]:
    """List the bar files of a directory (or one file), optionally only the given pairs, in pair order."""
    src = Path(source)
    if src.is_file():
        files = [src]
    elif src.is_dir():
        files = sorted(f for f in src.iterdir() if f.suffix in SUFFIXES and not f.name.startswith("."))
    else:
        raise FileNotFoundError(f"bar source {src} does not exist")
    found: dict[str, BarFile] = {}
    for f in files:
        pair = pair_from_path(f)
        if pair in found:
            raise BarValidationError(f, pair, None, None, f"second file for the pair (first: {found[pair].path})")
        found[pair] = BarFile(pair, f)
    wanted = list(pairs) if pairs is not None else sorted(found)
    missing = [p for p in wanted if p not in found]
    if missing:
        raise FileNotFoundError(f"no bar file for pair(s) {', '.join(missing)} in {src}")
    return [found[p] for p in wanted]


def first_line(path: Path) -> str:
    """A text file's first line (its header, or its first row), for sniffing the format."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.readline()


def _read_raw(path: Path, pair: str) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        header = first_line(path)
        if ";" in header and "," not in header:
            raise BarValidationError(path, pair, None, None, "the CSV is ';'-separated (a spreadsheet export?): "
                                     "write ',' between fields and '.' as the decimal point")
        if "\t" in header and "," not in header:
            raise BarValidationError(path, pair, None, None, "the CSV is tab-separated: write ',' between fields")
        return pd.read_csv(path, dtype={"ts_utc": str})
    raise BarValidationError(path, None, None, None, f"unsupported file type {path.suffix!r} (use .parquet or .csv)")


def modal_interval_s(ts_ns: np.ndarray) -> int | None:
    """The bar interval of a series of bar times: the most common spacing, in seconds (None below 2 bars)."""
    if len(ts_ns) < 2:
        return None
    steps, counts = np.unique(np.diff(np.asarray(ts_ns, dtype=np.int64)), return_counts=True)
    return int(steps[np.argmax(counts)] // 1_000_000_000)


def describe_interval(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _first_bad(mask: np.ndarray) -> int | None:
    if not mask.any():  # the common case, without building an index array
        return None
    return int(np.argmax(mask))


def _parse_ts(raw: pd.Series, path: Path, pair: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw):
        ts = raw
        if getattr(ts.dt, "tz", None) is None:
            raise BarValidationError(path, pair, 0, "ts_utc", "timestamps are timezone-naive; store them as UTC")
    else:
        text = raw.astype("string")
        missing = _first_bad(text.isna().to_numpy())
        if missing is not None:
            raise BarValidationError(path, pair, missing, "ts_utc", "missing timestamp")
        ts = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        bad = _first_bad(ts.isna().to_numpy())
        if bad is not None:
            raise BarValidationError(path, pair, bad, "ts_utc", f"cannot parse timestamp {raw.iloc[bad]!r}")
        naive = ~text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).to_numpy(dtype=bool)
        bad = _first_bad(naive)
        if bad is not None:
            raise BarValidationError(
                path, pair, bad, "ts_utc", f"timestamp {raw.iloc[bad]!r} has no UTC offset (write e.g. ...Z)"
            )
    return ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def validate_bars(df: pd.DataFrame, path: str | Path, pair: str) -> pd.DataFrame:
    """Check and normalise a raw frame of bars. Returns a new frame in the canonical schema."""
    path = Path(path)
    if len(df) == 0:
        raise BarValidationError(path, pair, None, None, "file holds no bars")
    for col in ("ts_utc", *PRICE_COLUMNS):
        if col not in df.columns:
            raise BarValidationError(path, pair, None, col, f"required column missing (have: {list(df.columns)})")
    ts = _parse_ts(df["ts_utc"].reset_index(drop=True), path, pair)
    ns = pd.DatetimeIndex(ts).asi8
    values = {col: pd.to_numeric(df[col].reset_index(drop=True), errors="coerce").to_numpy(dtype=np.float64)
              for col in (*PRICE_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in df.columns))}
    check_rows(ns, values, path, pair, raw=lambda col, row: df[col].iloc[row])
    out = pd.DataFrame({"ts_utc": ts})
    for col, v in values.items():
        out[col] = v
    return out


def check_many(bars: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], path: str | Path,
               joined: tuple[np.ndarray, dict[str, np.ndarray], np.ndarray] | None = None) -> None:
    """:func:`check_rows` for several pairs' bars (pair -> (ns, values)) in one pass over them all, for
    requests that carry a minute of every pair; a pair that breaks a rule is then checked alone, so
    the error names it and its row exactly as check_rows does. ``joined``: the same bars already laid
    end to end (times, columns, each pair's first row), so they are not concatenated again."""
    cols = {tuple(values) for _, values in bars.values()}
    if len(bars) > 1 and len(cols) == 1:
        if joined is None:
            parts = list(bars.values())
            joined = (np.concatenate([ns for ns, _ in parts]),
                      {c: np.concatenate([v[c] for _, v in parts]) for c in next(iter(cols))},
                      np.cumsum([0] + [len(ns) for ns, _ in parts[:-1]]))
        try:
            check_rows(joined[0], joined[1], path, "", segments=joined[2])
            return
        except BarValidationError:
            pass
    for pair, (ns, values) in bars.items():
        check_rows(ns, values, path, pair)


def check_rows(ns: np.ndarray, values: dict[str, np.ndarray], path: str | Path, pair: str,
               raw: Callable[[str, int], object] | None = None, segments: np.ndarray | None = None) -> None:
    """The row rules on parsed bars (UTC ns times and float columns): whole minutes, strictly increasing,
    finite positive prices (volume >= 0 or all missing), low <= open/close <= high. ``raw`` gives the
    value as written, for the message. ``segments``: the first rows of independent series laid end to
    end (times need only increase within each)."""
    path = Path(path)

    def when(row: int) -> pd.Timestamp:
        return pd.Timestamp(int(ns[row]), tz="UTC")

    bad = _first_bad(ns % 60_000_000_000 != 0)
    if bad is not None:
        raise BarValidationError(path, pair, bad, "ts_utc", f"{when(bad)} is not on a whole minute")
    step = np.diff(ns)
    if segments is not None and len(segments) > 1:
        step[segments[1:] - 1] = 1  # from one series to the next: not a step
    bad = _first_bad(step == 0)
    if bad is not None:
        raise BarValidationError(path, pair, bad + 1, "ts_utc", f"duplicate timestamp {when(bad + 1)}")
    bad = _first_bad(step < 0)
    if bad is not None:
        raise BarValidationError(
            path, pair, bad + 1, "ts_utc", f"timestamp {when(bad + 1)} is earlier than the row before (unsorted)"
        )
    for col, v in values.items():
        bad = _first_bad(~np.isfinite(v))
        if bad is not None and not (col == "volume" and np.isnan(v).all()):
            shown = raw(col, bad) if raw is not None else v[bad]
            if isinstance(shown, float | np.floating):
                shown = float(shown)
            if isinstance(shown, str) and _COMMA_DECIMAL.match(shown.strip()):
                raise BarValidationError(path, pair, bad, col, f"value {shown!r} uses ',' as the decimal point: "
                                         "write '.' (e.g. 1.0523)")
            raise BarValidationError(path, pair, bad, col, f"value {shown!r} is not a finite number")
        floor_ok = v >= 0 if col == "volume" else v > 0
        bad = _first_bad(~floor_ok & np.isfinite(v))
        if bad is not None:
            need = ">= 0" if col == "volume" else "> 0"
            raise BarValidationError(path, pair, bad, col, f"value {v[bad]!r} must be {need}")
    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    for col, mask, rule in (
        ("high", h < lo, "high < low"),
        ("low", lo > np.minimum(o, c), "low above open or close"),
        ("high", h < np.maximum(o, c), "high below open or close"),
    ):
        bad = _first_bad(mask)
        if bad is not None:
            raise BarValidationError(
                path, pair, bad, col, f"{rule} (open={o[bad]}, high={h[bad]}, low={lo[bad]}, close={c[bad]})"
            )
    if "bid" in values and "ask" in values:
        bad = _first_bad(values["bid"] > values["ask"])
        if bad is not None:
            raise BarValidationError(path, pair, bad, "bid", f"crossed quote: bid {values['bid'][bad]} > ask "
                                     f"{values['ask'][bad]}")


def read_bars(path: str | Path, pair: str | None = None) -> pd.DataFrame:
    """Read one bar file (Parquet or CSV) and return validated bars in the canonical schema."""
    p = Path(path)
    pair = pair or pair_from_path(p)
    try:
        raw = _read_raw(p, pair)
    except BarValidationError:
        raise
    except Exception as err:  # unreadable file: name it
        raise BarValidationError(p, pair, None, None, f"cannot read file: {err}") from err
    try:
        return validate_bars(raw, p, pair)
    except BarValidationError as err:
        if p.suffix == ".csv":  # data row 0 is line 2, under the header
            raise err.at_lines(2) from None
        raise
