"""A pair's selected dataset as a view of extract's features: nothing is stored twice.

Extract writes every feature of every row once (``features.parquet``, about 1 GB per pair-year). The
select stage's ``dataset`` artifact holds only ``selection.json``: the chosen columns (lagged ones are
``{feature}_lag{k}``, :mod:`bqx.columns`), the bookkeeping columns beside them and each split's row
range. Train, tune and drift open that selection over the features and build the columns they read
(:meth:`PairDataset.frames`); SageMaker's channels get the splits as Parquet files in a temporary
directory (:mod:`bqx.train.channels`). Each split keeps the rows whose training target is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.artifacts import FEATURES, SELECTION, SPLIT_NAMES


@dataclass(frozen=True)
class PairDataset:
    """A selection (``selection.json`` as select wrote it) over the features file it selects from."""

    selection: dict
    features_path: Path

    @classmethod
    def open(cls, dataset_dir: str | Path, features_dir: str | Path) -> PairDataset:
        """Select's artifact and extract's, with one clear line when either is not what it should be."""
        from bqx.io import read_json

        path = Path(dataset_dir) / SELECTION
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {SELECTION} (is {dataset_dir} the select stage's dataset?)")
        selection = read_json(path)
        missing = [k for k in ("features", "target", "head", "splits") if k not in selection]
        if missing:
            raise ValueError(f"{path}: lacks {', '.join(missing)} (written by an older bqx? rerun select)")
        features = Path(features_dir) / FEATURES
        if not features.is_file():
            raise FileNotFoundError(f"{features}: no {FEATURES} (is {features_dir} the extract stage's features?)")
        return cls(selection, features)

    @property
    def pair(self) -> str:
        return str(self.selection.get("pair", "pair"))

    @property
    def features(self) -> list[str]:
        return list(self.selection["features"])

    @property
    def target(self) -> str:
        return str(self.selection["target"])

    def frames(self, splits: Iterable[str] = SPLIT_NAMES, columns: list[str] | None = None) -> dict[str, pd.DataFrame]:
        """Each split's rows that have a training target: the bookkeeping columns (time, targets, evaluation
        columns), then the chosen features (or only ``columns`` of them) as float32, reading each base
        feature once for every split and writing each value once (one column-major block per split)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from bqx.columns import parse
        from bqx.lag import lagged_block, read_base

        chosen = self.features if columns is None else list(columns)
        where = [parse(c) for c in chosen]
        stored = set(pq.read_schema(self.features_path).names)
        missing = sorted({w.base for w in where} - stored) + [c for c in self.selection["head"] if c not in stored]
        if missing:
            raise ValueError(f"{self.features_path}: no column {', '.join(missing[:3])}"
                             f"{f' (and {len(missing) - 3} more)' if len(missing) > 3 else ''}, which the "
                             "selection reads (features of another catalog or settings? rerun extract)")
        head = pq.read_table(self.features_path, columns=self.selection["head"]).to_pandas()
        base = read_base(self.features_path, sorted({w.base for w in where}))
        known = head[self.target].notna().to_numpy()
        out = {}
        for name in splits:
            lo, hi = self.selection["splits"][name]
            rows = lo + np.flatnonzero(known[lo:hi])
            block = lagged_block(base, rows, chosen)
            frame = pd.DataFrame(block, columns=chosen, copy=False)
            for k, col in enumerate(self.selection["head"]):
                frame.insert(k, col, head[col].array.take(rows))
            out[name] = frame
        del base, head
        pa.default_memory_pool().release_unused()  # Arrow keeps freed buffers otherwise: the next stage's peak
        return out


def feature_matrix(frames: list[pd.DataFrame], features: list[str]) -> np.ndarray:
    """The frames' feature columns one after the other as one column-major float32 matrix, each value
    copied once (CatBoost reads a matrix column by column when it quantises)."""
    x = np.empty((sum(len(f) for f in frames), len(features)), dtype=np.float32, order="F")
    lo = 0
    for frame in frames:
        for j, name in enumerate(features):
            x[lo:lo + len(frame), j] = frame[name].to_numpy()
        lo += len(frame)
    return x


def define(selection: dict, head: list[str], splits: dict[str, list[int]]) -> dict:
    """``selection`` with what opening it over the features needs: the bookkeeping columns and each
    split's ``[first, end)`` row range of the features file."""
    return {**selection, "head": list(head), "splits": {name: list(splits[name]) for name in SPLIT_NAMES}}
