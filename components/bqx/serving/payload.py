"""Invocation payloads: parse JSON, validate rows of named features against a model's feature list.

Two JSON request forms (``Content-Type: application/json``)::

    {"rows": [{"<feature>": 1.0, ...}, ...]}      # or one row: {"features": {...}}
    {"bars": [{"ts_utc": "...", "open": ..., "high": ..., "low": ..., "close": ...}, ...]}

and CSV (``Content-Type: text/csv``), the form SageMaker Batch Transform sends: one row per line, the
model's features in the order of its ``selection.json``, no header; an empty field is a
missing value, which the model treats as CatBoost does. With ``Accept: text/csv`` the answer is one
prediction per line, in the rows' order.

Every problem raises :class:`PayloadError` with the HTTP status and a message naming the row and
fields, so a client can fix the request without reading server logs.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_ROWS = 10_000
_NUMBER = {float, int}
SHOW = 8  # names listed per problem; the count says how many more


class PayloadError(Exception):
    """A request the server refuses: ``status`` is the HTTP code (4xx)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class WarmingUp(Exception):
    """Raw bars were accepted into a pair's history, which is still too short to seed its online
    state: the server answers 202 with how many bars it has and needs (no prediction yet)."""

    def __init__(self, model: str, pair: str, have: int, need: int) -> None:
        super().__init__(f"pair {pair}: {have} of {need} bars of history so far")
        self.body = {"status": "warming up", "model": model, "pair": pair, "bars": have, "needed": need,
                     "message": f"pair {pair}: {have} of the {need} bars of history the online state starts from; "
                                "keep sending bars (oldest first): predictions start once it is seeded"}


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOW])
    return shown + (f" (+{len(names) - SHOW} more)" if len(names) > SHOW else "")


@dataclass(frozen=True)
class Raw:
    """A reply that is not JSON: its bytes and their media type."""

    body: bytes
    content_type: str


def check_size(body: bytes) -> None:
    """413 for a body over :data:`MAX_BODY_BYTES`, whatever its form."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(413, f"request body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,}")


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";")[0].strip().lower()


def wants_csv(accept: str | None) -> bool:
    """True when the client asks for CSV (Batch Transform's ``Accept: text/csv``)."""
    return any(media_type(part) == CSV for part in (accept or "").split(","))


CSV = "text/csv"


def csv_matrix(body: bytes, features: list[str]) -> np.ndarray:
    """(rows, features) float64 from CSV lines in the model's feature order; an empty field is NaN
    (missing). 400 naming the line and column of the first field that is not a finite number, or a
    line with the wrong number of fields."""
    check_size(body)
    lines = body.decode("utf-8", "replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise PayloadError(400, "CSV request has no rows: send one line of feature values per row")
    n = len(features)
    try:
        import pandas as pd

        frame = pd.read_csv(io.StringIO("\n".join(lines)), header=None, dtype=np.float64, na_filter=True,
                            keep_default_na=False, na_values=[""], engine="c")
        out = frame.to_numpy(dtype=np.float64)
        if out.shape[1] == n and np.isfinite(out[~np.isnan(out)]).all():
            return out
    except (ValueError, pd.errors.ParserError):
        pass
    for i, line in enumerate(lines):  # the fast read failed or found a bad value: name the first problem
        fields = line.split(",")
        if len(fields) != n:
            raise PayloadError(400, f"CSV line {i + 1}: {len(fields)} fields; the model takes {n} features, in "
                                    f"the order of the model's selection.json")
        for j, text in enumerate(fields):
            if not text.strip():
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.inf
            if math.isinf(value):
                raise PayloadError(400, f"CSV line {i + 1}, column {j + 1} ({features[j]}): {text.strip()[:40]!r} "
                                        "is not a finite number (leave the field empty for a missing value)")
    raise PayloadError(400, "CSV request could not be read as rows of numbers")  # pragma: no cover


def csv_reply(predictions: np.ndarray) -> Raw:
    """One prediction per line, each the shortest text that reads back as the same float64."""
    return Raw(("\n".join(map(repr, predictions.tolist())) + "\n").encode(), CSV)


def parse_json(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The request object; 415 for other media types, 400 for malformed JSON or a non-object."""
    media = media_type(content_type)
    if media not in ("application/json", "application/jsonlines", "*/*", ""):
        raise PayloadError(415, f"Content-Type {media!r} is not supported: send application/json or text/csv")
    check_size(body)
    try:
        obj = orjson.loads(body)  # ~6x faster than json for a row of 250 floats
    except orjson.JSONDecodeError:
        obj = _parse_refused(body)
    if not isinstance(obj, dict):
        raise PayloadError(400, "request body must be a JSON object with 'rows', 'features' or 'bars'")
    return obj


def _parse_refused(body: bytes) -> Any:  # noqa: ANN401
    """What orjson refused, parsed by the standard library for its message (or for NaN and Infinity,
    which it accepts, so that the row check names the non-finite fields)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError(400, "request body is nested too deeply to be a bqx request") from None


def request_rows(obj: dict[str, Any]) -> list[Any] | None:
    """The feature rows of a request, or None when it is a raw-bars request."""
    forms = [k for k in ("rows", "features", "bars") if k in obj]
    if len(forms) != 1:
        raise PayloadError(400, "request must have exactly one of 'rows' (list of objects), 'features' (one object) "
                                f"or 'bars' (list of bars); got {sorted(obj) or 'none'}")
    if forms[0] == "bars":
        return None
    rows = obj["rows"] if forms[0] == "rows" else [obj["features"]]
    if not isinstance(rows, list) or not rows:
        raise PayloadError(400, "'rows' must be a non-empty list of objects {feature: value}")
    if len(rows) > MAX_ROWS:
        raise PayloadError(413, f"{len(rows):,} rows in one request; the limit is {MAX_ROWS:,}")
    return rows


def _finite(value: Any) -> bool:
    if type(value) is not float and type(value) is not int:
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def rows_matrix(rows: list[Any], features: list[str]) -> np.ndarray:
    """(rows, features) float64 in the model's column order; 400 naming the row and the missing, extra
    or non-finite fields of the first bad row."""
    wanted = set(features)
    out = np.empty((len(rows), len(features)), dtype=np.float64)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PayloadError(400, f"row {i}: expected an object {{feature: value}}, got {type(row).__name__}")
        if len(row) != len(features) or row.keys() != wanted:
            missing = [f for f in features if f not in row]
            extra = sorted(str(k) for k in row if k not in wanted)
            parts = []
            if missing:
                parts.append(f"missing {len(missing)} feature(s): {_names(missing)}")
            if extra:
                parts.append(f"unknown {len(extra)} field(s): {_names(extra)}")
            raise PayloadError(400, f"row {i}: " + "; ".join(parts))
        values = [row[f] for f in features]
        ok = set(map(type, values)) <= _NUMBER  # not bool, str, None, list
        if ok:
            try:
                out[i] = values
            except OverflowError:  # an int beyond float range
                ok = False
            ok = ok and bool(np.isfinite(out[i]).all())
        if not ok:
            bad = [f for f in features if not _finite(row[f])]
            raise PayloadError(400, f"row {i}: {len(bad)} field(s) are not finite numbers: {_names(bad)}")
    return out
