"""The lag stage: the candidate set of a pair, as a plan over its rows.

A lag of k rows is ``x(t - k)``: strictly past values, so lagging never breaks causality. Lagged
columns are views of the base features shifted by k rows, so they are never stored: the stage writes
the lag plan, the walk-forward split of the rows (:mod:`bqx.splits`) and a seeded sample of training
rows. Select builds every candidate on that sample (:func:`sample_candidates`), and the stages after
it build only the chosen columns for every row (:mod:`bqx.dataset`), all from extract's features.

Usable rows start at the longest lag (so every lag exists) and must have a target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bqx.artifacts import FEATURES, LAG_PLAN, SPLITS
from bqx.catalog import Catalog
from bqx.columns import base_name, lag_of, parse
from bqx.config import Settings
from bqx.io import write_json

COLUMN_BATCH = 128  # feature columns read from Parquet at a time


def candidate_columns(settings: Settings) -> list[str]:
    return Catalog(settings).candidate_names()


def lagged_block(base: dict[str, np.ndarray], rows: np.ndarray, columns: list[str],
                 out: np.ndarray | None = None) -> np.ndarray:
    """Candidate values at the given row positions (any order) as one column-major float32 block, one
    column per candidate: ``x(row - k)`` of its base feature, NaN where ``row - k < 0``. Each value is
    written once (``np.take`` into the block's column, or into ``out``'s columns, a column-major float32
    block of that shape); every reader of lagged columns builds them here."""
    shape = (len(rows), len(columns))
    if out is not None and (out.shape != shape or out.dtype != np.float32 or not out.flags.f_contiguous):
        raise ValueError(f"lagged_block: out must be a column-major float32 block of shape {shape}")
    block = np.empty(shape, dtype=np.float32, order="F") if out is None else out
    for j, col in enumerate(columns):
        c = parse(col)
        pos = rows - c.lag
        np.take(base[c.base], pos, out=block[:, j], mode="clip")  # clip: no bounds pass; negatives below
        if c.lag:
            block[pos < 0, j] = np.nan
    return block


def build_candidates(base: dict[str, np.ndarray], rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Candidate values at the given row positions from base feature arrays (float32); rows - k < 0 -> NaN."""
    return pd.DataFrame(lagged_block(base, rows, columns), columns=columns, copy=False)


def add_lags(features: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Every candidate for every row of an in-memory frame, first max-lag rows dropped (small data, tests)."""
    k_max = settings.splits.max_lag
    n = len(features)
    if n <= k_max:
        raise ValueError(f"{n} feature rows: need more than the longest lag ({k_max} rows)")
    columns = candidate_columns(settings)
    missing = [c for c in {base_name(c) for c in columns} if c not in features.columns]
    if missing:
        raise ValueError(f"features frame lacks {len(missing)} catalog feature(s), e.g. {sorted(missing)[:3]}")
    base = {name: features[name].to_numpy() for name in {base_name(c) for c in columns}}
    rows = np.arange(k_max, n)
    head = features[[c for c in features.columns if "." not in c]].iloc[k_max:].reset_index(drop=True)
    return pd.concat([head, build_candidates(base, rows, columns)], axis=1)


def read_base(features_path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Base feature columns from features.parquet as float32 arrays (all rows)."""
    table = pq.ParquetFile(features_path).read(columns=names)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def materialise(features_path: Path, columns: list[str], rows: np.ndarray) -> pd.DataFrame:
    """Only the given candidate columns, for the given rows, reading only their base features."""
    bases = sorted({base_name(c) for c in columns})
    return build_candidates(read_base(features_path, bases), rows, columns)


@dataclass(frozen=True)
class LagSummary:
    rows: int
    candidates: int
    sample_rows: int  # training rows sampled for selection
    split_rows: dict[str, int]


def run(features_dir: str | Path, settings: Settings, out_dir: str | Path) -> LagSummary:
    """Stage entry: split the rows, sample training rows, write the lag plan and the split (with the
    sample's rows); the candidate values are built from the features where they are read."""
    from bqx.splits import split_rows

    path = Path(features_dir) / FEATURES
    head = pq.read_table(path, columns=["ts_utc", settings.features.target_name]).to_pandas()
    parts = split_rows(head[settings.features.target_name].to_numpy(), settings)
    rng = np.random.default_rng(settings.selection.seed)
    train = parts["train"]
    n = min(settings.selection.sample_rows, len(train))
    sample = np.sort(rng.choice(train, size=n, replace=False))
    columns = candidate_columns(settings)
    out = Path(out_dir)
    catalog = Catalog(settings)
    write_json({"columns": columns, "domains": {c: catalog.domain_of(c) for c in columns},
                "lags": {c: lag_of(c) for c in columns}}, out / LAG_PLAN)
    write_json({name: [int(rows[0]), int(rows[-1]) + 1] if len(rows) else [0, 0] for name, rows in parts.items()}
               | {"sample_rows": sample.tolist()}, out / SPLITS)
    return LagSummary(len(head), len(columns), n, {k: len(v) for k, v in parts.items()})


def sample_block(features_path: Path, columns: list[str], rows: np.ndarray) -> np.ndarray:
    """Every candidate on the sampled rows as one column-major float32 block (columns in ``columns``'
    order), a batch of base columns in memory at a time, each value written once into the block."""
    where = {c: j for j, c in enumerate(columns)}
    if len(where) < len(columns):
        raise ValueError(f"sample_block: column {next(c for c in columns if columns.count(c) > 1)!r} is listed twice")
    by_base: dict[str, list[str]] = {}
    for c in columns:
        by_base.setdefault(base_name(c), []).append(c)
    bases = list(by_base)
    block = np.empty((len(rows), len(columns)), dtype=np.float32, order="F")
    for lo in range(0, len(bases), COLUMN_BATCH):
        chunk = bases[lo:lo + COLUMN_BATCH]
        base = read_base(features_path, chunk)
        for b in chunk:  # a base's candidates are adjacent in the catalog's order; any order works
            names = by_base[b]
            js = [where[c] for c in names]
            if js == list(range(js[0], js[0] + len(js))):
                lagged_block(base, rows, names, out=block[:, js[0]:js[0] + len(js)])
            else:
                block[:, js] = lagged_block(base, rows, names)
        del base
    return block


def sample_candidates(features_path: Path, columns: list[str], rows: np.ndarray, target: str,
                      target_values: np.ndarray | None = None) -> pd.DataFrame:
    """The target and every candidate on the sampled rows (:func:`sample_block`, not copied again);
    ``target_values`` is the target column of every row when the caller has already read it."""
    y = target_values if target_values is not None else \
        pq.read_table(features_path, columns=[target]).column(target).to_numpy()
    frame = pd.DataFrame(sample_block(features_path, columns, rows), columns=columns, copy=False)
    frame.insert(0, target, y[rows])
    return frame


__all__ = ["add_lags", "lagged_block", "materialise", "run", "sample_block", "sample_candidates"]
