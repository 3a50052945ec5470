"""The ingest stage: find bar files, import, validate and normalise them, write one Parquet per pair.

Accepted inputs (a directory or one file): canonical ``{pair}.parquet`` / ``{pair}.csv``, HistData
ASCII M1 CSV (``;``-separated, sniffed) and OANDA v20 candles ``.json``. Several files of one pair
(e.g. HistData's yearly files) are joined in time order and validated together. Everything is
validated before anything is published: files are written to a staging dir and moved into place only
when every pair passed, so a bad file leaves the output as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bqx.bars import BarValidationError, pair_from_path, read_bars, validate_bars
from bqx.importers import read_histdata, read_oanda
from bqx.io import write_parquet

log = logging.getLogger(__name__)
SUFFIXES = (".parquet", ".csv", ".json")


def _is_histdata(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    return ";" in first and "ts_utc" not in first


def read_any(path: Path) -> tuple[str, pd.DataFrame]:
    """Read one file in any accepted format; returns (pair, validated bars)."""
    if path.suffix == ".json":
        bars = read_oanda(path)
    elif path.suffix == ".csv" and _is_histdata(path):
        bars = read_histdata(path)
    else:
        return pair_from_path(path), read_bars(path)
    return str(bars.attrs["pair"]), bars


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


def ingest(source: str | Path, out_dir: str | Path, pairs: Iterable[str] | None = None) -> dict[str, dict]:
    """Validate all pairs, then publish ``{out_dir}/{pair}.parquet``; returns a per-pair summary."""
    bars = load_pairs(source, pairs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        for pair, df in bars.items():
            write_parquet(df, staging / f"{pair}.parquet")
        for pair in bars:
            os.replace(staging / f"{pair}.parquet", out / f"{pair}.parquet")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary = {
        pair: {"rows": len(df), "first": str(df["ts_utc"].iloc[0]), "last": str(df["ts_utc"].iloc[-1]),
               "columns": list(df.columns)}
        for pair, df in bars.items()
    }
    log.info("ingested %d pairs", len(summary))
    return summary


__all__ = ["BarValidationError", "ingest", "load_pairs", "read_any"]
