"""Atomic file writes: write to a temporary sibling, fsync, then rename, so readers never see half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's 0600 would hide outputs from other users


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path`` (with the permissions a
    plain write would give it), else delete it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_with(path: str | Path, writer: Callable[[Path], None]) -> Path:
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


# How every stage writes Parquet, chosen by measurement (bench/README.md): continuous floats never repeat,
# so dictionary encoding only costs time; their bytes split by position (BYTE_STREAM_SPLIT) compress well
# with LZ4, which writes a pair-year's feature frame in half zstd level 1's time and reads it back twice
# as fast, for 4% more bytes.
PARQUET_CODEC = {"compression": "lz4", "use_dictionary": False}


def float_columns(names_and_types: list[tuple[str, object]]) -> list[str]:
    """The columns BYTE_STREAM_SPLIT applies to (floating point)."""
    import pyarrow as pa

    return [name for name, kind in names_and_types if pa.types.is_floating(kind)]


def parquet_options(schema: object) -> dict:
    """:data:`PARQUET_CODEC` with BYTE_STREAM_SPLIT on the float columns of an Arrow schema."""
    return {**PARQUET_CODEC, "use_byte_stream_split": float_columns(
        [(f.name, f.type) for f in schema]) or False}  # type: ignore[attr-defined]


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """A frame as every stage writes it (:data:`PARQUET_CODEC`), atomically."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    return _write_with(path, lambda tmp: pq_write(table, tmp))


def pq_write(table: object, path: str | Path, **kwargs: object) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path, **parquet_options(table.schema), **kwargs)  # type: ignore[attr-defined]


def write_json(obj: Any, path: str | Path) -> Path:
    return _write_with(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


def write_text(text: str, path: str | Path) -> Path:
    return _write_with(path, lambda tmp: tmp.write_text(text))


def write_bytes(data: bytes, path: str | Path) -> Path:
    return _write_with(path, lambda tmp: tmp.write_bytes(data))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
