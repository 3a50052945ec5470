"""The server's prediction log: what ``bqx monitor`` reads for prediction drift.

Rows (ts_utc, pair, prediction, model, model_version, variant) are buffered in memory and written as one
Parquet part file per flush (atomic rename, so a reader never sees half a file) when
``flush_rows`` accumulate, when ``flush_seconds`` have passed, and at shutdown. The log may be an
``s3://`` prefix (each part one object, written whole), which the drift pipeline reads from there.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa

from bqx.io import pq_write, write_parquet
from bqx.locations import is_s3, write_object


class PredictionLog:
    def __init__(self, log_dir: str | Path, flush_rows: int = 1000, flush_seconds: float = 30.0) -> None:
        self.location = str(log_dir)
        self.dir = Path(log_dir)
        if not is_s3(self.location):
            self.dir.mkdir(parents=True, exist_ok=True)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._rows: list[tuple] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._seq = 0

    def append(self, ts_utc: list[pd.Timestamp], pair: str, predictions: list[float], model: str,
               version: str, variant: str = "") -> None:
        with self._lock:
            self._rows.extend((t, pair, p, model, version, variant) for t, p in zip(ts_utc, predictions, strict=True))
            due = len(self._rows) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds
        if due:
            self.flush()

    def flush(self) -> Path | None:
        with self._lock:
            rows, self._rows = self._rows, []
            self._last_flush = time.monotonic()
            self._seq += 1
            seq = self._seq
        if not rows:
            return None
        df = pd.DataFrame(rows, columns=["ts_utc", "pair", "prediction", "model", "model_version", "variant"])
        df["ts_utc"] = pd.to_datetime(df["ts_utc"], utc=True)
        name = f"predictions-{time.time_ns()}-{seq:06d}.parquet"
        if is_s3(self.location):
            buf = io.BytesIO()
            pq_write(pa.Table.from_pandas(df, preserve_index=False), buf)
            return Path(write_object(self.location, name, buf.getvalue()))
        return write_parquet(df, self.dir / name)
