"""A pair's dataset as SageMaker's training channels, for the train and tune stages."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from bqx.artifacts import SELECTION, split_file
from bqx.dataset import PairDataset
from bqx.io import write_json, write_parquet


@contextmanager
def channels_of(dataset: PairDataset, frames: Mapping[str, pd.DataFrame] | None = None
                ) -> Iterator[dict[str, Path]]:
    """The dataset's train and validation splits as SageMaker's training channels (``train`` with
    selection.json, ``validation``), written to a temporary directory that goes when the block ends;
    ``frames``: the splits already built (else they are built here)."""
    frames = dict(frames) if frames is not None else dataset.frames(("train", "val"))
    with tempfile.TemporaryDirectory(prefix="bqx-channels-") as tmp:
        channels = {}
        for channel, split_name in (("train", "train"), ("validation", "val")):
            cdir = Path(tmp) / channel
            cdir.mkdir()
            write_parquet(frames.pop(split_name), cdir / split_file(split_name))
            channels[channel] = cdir
        write_json(dataset.selection, channels["train"] / SELECTION)
        yield channels
