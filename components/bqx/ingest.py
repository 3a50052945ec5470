"""The ingest stage: find bar files, import, validate and normalise them, write one Parquet per pair.

Accepted inputs (a directory or one file): canonical ``{pair}.parquet`` / ``{pair}.csv``, HistData
ASCII M1 CSV (``;``-separated, no header, sniffed), Dukascopy CSV exports (``Time,Open,...`` header,
sniffed) and OANDA v20 candles ``.json``. Several files of one pair (e.g. HistData's yearly files) are
joined in time order and validated together; files whose rows overlap are an error naming both.
Against the settings, each pair must cover the configured baseline date, hold enough bars for the
run (:func:`bqx.splits.bars_needed`) and have one bar interval shared by every pair (inferred as the
modal spacing, or the stated ``bar_interval_s``). Everything is validated before anything is
published: files are written to a staging dir and moved into place only when every pair passed, so a
bad file leaves the output as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bqx.artifacts import bars_file
from bqx.bars import (
    BarValidationError,
    describe_interval,
    first_line,
    modal_interval_s,
    pair_from_path,
    read_bars,
    validate_bars,
)
from bqx.config import Settings
from bqx.importers import is_dukascopy_header, read_dukascopy, read_histdata, read_oanda
from bqx.io import write_parquet
from bqx.pairs import listed_twice

log = logging.getLogger(__name__)
SUFFIXES = (".parquet", ".csv", ".json")


def _is_histdata(first: str) -> bool:
    """HistData rows: ``20240102 000000;1.1;...`` (no header)."""
    return ";" in first and first[:8].isdigit()


def read_any(path: Path) -> tuple[str, pd.DataFrame]:
    """Read one file in any accepted format; returns (pair, validated bars)."""
    if path.suffix == ".json":
        bars = read_oanda(path)
    elif path.suffix == ".csv" and _is_histdata(first := first_line(path)):
        bars = read_histdata(path)
    elif path.suffix == ".csv" and is_dukascopy_header(first):
        bars = read_dukascopy(path)
    else:
        return pair_from_path(path), read_bars(path)
    return str(bars.attrs["pair"]), bars


@dataclass(frozen=True)
class Coverage:
    """What ingest learned of one pair against the settings."""

    interval_s: int
    baseline_row: int  # first bar the run uses (the baseline); earlier bars are dropped by extract


@dataclass(frozen=True)
class IngestedPair:
    rows: int
    first: str  # first and last bar time, UTC
    last: str
    columns: list[str]
    bar_interval_s: int
    baseline_row: int


@dataclass(frozen=True)
class IngestSummary:
    """What ingest published: every pair's bars, on one shared bar interval."""

    pairs: dict[str, IngestedPair]

    @property
    def bar_interval_s(self) -> int:
        return next(iter(self.pairs.values())).bar_interval_s

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pairs.values())


def check_coverage(bars: dict[str, pd.DataFrame], settings: Settings, run_checks: bool = True) -> dict[str, Coverage]:
    """Each pair against the settings: one shared bar interval (the stated one, if stated), the baseline
    date inside the data and (``run_checks``) enough bars from the baseline on. Raises one ValueError
    naming the pair and what is needed."""
    from bqx.features.primary import baseline_instant, baseline_row
    from bqx.splits import bars_needed, bars_needed_parts

    need = bars_needed(settings)
    out: dict[str, Coverage] = {}
    for pair, df in bars.items():
        ts = pd.DatetimeIndex(df["ts_utc"])
        seen = modal_interval_s(ts.asi8) or settings.features.bar_interval_s or 60
        if settings.features.bar_interval_s is not None and seen != settings.features.bar_interval_s:
            raise ValueError(f"pair {pair}: bars are {describe_interval(seen)} apart (the most common spacing) but "
                             f"bar_interval_s says {describe_interval(settings.features.bar_interval_s)}")
        start = 0
        if settings.features.baseline_date is not None:
            if not ts[0] <= baseline_instant(settings.features.baseline_date) <= ts[-1]:
                raise ValueError(f"pair {pair}: baseline_date {settings.features.baseline_date} is outside its data "
                                 f"({ts[0]} .. {ts[-1]}); set a date inside it, or leave baseline_date unset to "
                                 "index rate_idx to the first bar")
            start = baseline_row(ts, settings.features.baseline_date)
        if run_checks and len(ts) - start < need:
            after = f" from the baseline date on ({start} earlier bars are dropped)" if start else ""
            parts = ", ".join(f"{k} {v:,}" for k, v in bars_needed_parts(settings).items())
            raise ValueError(f"pair {pair}: {len(ts) - start:,} bars{after}; a run needs at least {need:,} ({parts})")
        out[pair] = Coverage(seen, start)
    intervals = {c.interval_s for c in out.values()}
    if len(intervals) > 1:
        shown = ", ".join(f"{p} {describe_interval(c.interval_s)}" for p, c in sorted(out.items()))
        raise ValueError(f"pairs have different bar intervals ({shown}): give every pair bars of one interval")
    return out


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"bar source {source} does not exist")
    files = sorted(f for f in source.iterdir() if f.suffix in SUFFIXES and not f.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"no bar files (.parquet, .csv, .json) in {source}")
    return files


def _s3_filesystem() -> object:
    """pyarrow's S3 filesystem, pointed at the same endpoint override as every boto3 client."""
    from urllib.parse import urlparse

    from pyarrow import fs

    from bqx.aws import endpoint_url

    url = endpoint_url()
    if url:
        parsed = urlparse(url)
        return fs.S3FileSystem(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https",
                               region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    return fs.S3FileSystem()


def load_pairs(source: str | Path, pairs: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Read and validate every pair found under ``source`` (only ``pairs`` if given); ``source`` may be
    an ``s3://bucket/prefix`` URI, read through pyarrow's S3 filesystem."""
    if str(source).startswith("s3://"):
        return _load_s3(str(source), pairs)
    src = Path(source)
    wanted = set(pairs) if pairs is not None else None
    parts: dict[str, list[tuple[Path, pd.DataFrame]]] = {}
    for f in _files(src):
        pair, bars = read_any(f)
        if wanted is None or pair in wanted:
            parts.setdefault(pair, []).append((f, bars))
    if wanted is not None:
        missing = sorted(wanted - parts.keys())
        if missing:
            raise FileNotFoundError(f"no bar file for pair(s) {', '.join(missing)} in {src}")
    out = {}
    for pair, chunks in sorted(parts.items()):
        if len(chunks) == 1:
            out[pair] = chunks[0][1]
            continue
        chunks.sort(key=lambda fc: fc[1]["ts_utc"].iloc[0])
        for (fa, a), (fb, b) in zip(chunks, chunks[1:], strict=False):
            if b["ts_utc"].iloc[0] <= a["ts_utc"].iloc[-1]:
                raise BarValidationError(fb, pair, None, "ts_utc", f"its bars overlap those of {fa.name}: "
                                         f"{fa.name} runs {a['ts_utc'].iloc[0]} .. {a['ts_utc'].iloc[-1]}, "
                                         f"{fb.name} starts {b['ts_utc'].iloc[0]}; keep one file per period")
        joined = pd.concat([c for _, c in chunks], ignore_index=True)
        names = ", ".join(f.name for f, _ in chunks)
        out[pair] = validate_bars(joined, f"{src} ({names})", pair)
    return out


def _load_s3(uri: str, pairs: Iterable[str] | None) -> dict[str, pd.DataFrame]:
    """Copy the bar files under an S3 prefix to a temp dir, then read them as local files; errors name
    the s3:// URI of the bad file."""
    from pyarrow import fs

    s3 = _s3_filesystem()
    base = uri[len("s3://"):].rstrip("/")
    infos = s3.get_file_info(fs.FileSelector(base, recursive=False))  # type: ignore[attr-defined]
    files = [i for i in infos if i.type == fs.FileType.File and Path(i.path).suffix in SUFFIXES]
    if not files:
        raise FileNotFoundError(f"no bar files (.parquet, .csv, .json) under {uri}")
    with tempfile.TemporaryDirectory(prefix="bqx-s3-") as tmp:
        for info in files:
            with s3.open_input_stream(info.path) as src, open(Path(tmp) / Path(info.path).name, "wb") as dst:  # type: ignore[attr-defined]
                dst.write(src.read())
        try:
            return load_pairs(tmp, pairs)
        except BarValidationError as err:
            raise BarValidationError(err.file.replace(tmp, f"s3://{base}"), err.pair, err.row, err.field,
                                     err.problem) from None


def ingest(source: str | Path, out_dir: str | Path, pairs: Iterable[str] | None = None,
           settings: Settings | None = None) -> IngestSummary:
    """Validate all pairs, then publish ``{out_dir}/{pair}.parquet``; returns what was published. With
    ``settings`` (as the stage always passes) every pair is also checked against them
    (:func:`check_coverage`): a run's inputs are refused here, not deep inside a later stage."""
    if pairs is not None:
        pairs = list(pairs)
        twice = listed_twice(pairs)
        if twice:
            raise ValueError(f"pairs listed twice: {', '.join(twice)}")
    bars = load_pairs(source, pairs)
    coverage = check_coverage(bars, settings or Settings(), run_checks=settings is not None)
    for pair, cov in coverage.items():
        if cov.interval_s != 60:
            log.warning("pair %s: %s bars; the catalog's windows count bars and are designed for 1-minute bars",
                        pair, describe_interval(cov.interval_s))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        for pair, df in bars.items():
            write_parquet(df, staging / bars_file(pair))
        for pair in bars:
            os.replace(staging / bars_file(pair), out / bars_file(pair))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary = IngestSummary({
        pair: IngestedPair(len(df), str(df["ts_utc"].iloc[0]), str(df["ts_utc"].iloc[-1]), list(df.columns),
                           coverage[pair].interval_s, coverage[pair].baseline_row)
        for pair, df in bars.items()
    })
    log.info("ingested %d pairs", len(summary.pairs))
    return summary


__all__ = ["BarValidationError", "IngestSummary", "IngestedPair", "ingest", "load_pairs", "read_any"]
