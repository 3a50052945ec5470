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


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Numeric frames: no dictionary encoding (continuous values never repeat; it only costs time)."""
    return _write_with(path, lambda tmp: df.to_parquet(tmp, index=False, use_dictionary=False))


def write_json(obj: Any, path: str | Path) -> Path:
    return _write_with(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


def write_text(text: str, path: str | Path) -> Path:
    return _write_with(path, lambda tmp: tmp.write_text(text))


def write_bytes(data: bytes, path: str | Path) -> Path:
    return _write_with(path, lambda tmp: tmp.write_bytes(data))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
