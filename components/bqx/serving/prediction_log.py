"""The server's prediction log: what ``bqx monitor`` reads for prediction drift.

Rows (ts_utc, pair, prediction, model, model_version) are buffered in memory and written as one
Parquet part file per flush (atomic rename, so a reader never sees half a file) when
``flush_rows`` accumulate, when ``flush_seconds`` have passed, and at shutdown.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd

from bqx.io import write_parquet


class PredictionLog:
    def __init__(self, log_dir: str | Path, flush_rows: int = 1000, flush_seconds: float = 30.0) -> None:
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._rows: list[tuple] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._seq = 0

    def append(self, ts_utc: list[pd.Timestamp], pair: str, predictions: list[float], model: str,
               version: str) -> None:
        with self._lock:
            self._rows.extend((t, pair, p, model, version) for t, p in zip(ts_utc, predictions, strict=True))
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
        df = pd.DataFrame(rows, columns=["ts_utc", "pair", "prediction", "model", "model_version"])
        df["ts_utc"] = pd.to_datetime(df["ts_utc"], utc=True)
        return write_parquet(df, self.dir / f"predictions-{time.time_ns()}-{seq:06d}.parquet")
