"""A select-stage dataset as SageMaker's training channels, for the train and tune stages."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bqx.artifacts import SELECTION, split_file


@contextmanager
def channels_of(dataset_dir: Path) -> Iterator[dict[str, Path]]:
    """A select-stage dataset as SageMaker's training channels (``train`` with selection.json,
    ``validation``), in a temporary directory that goes when the block ends."""
    with tempfile.TemporaryDirectory(prefix="bqx-channels-") as tmp:
        channels = {}
        for channel, split_name in (("train", "train"), ("validation", "val")):
            cdir = Path(tmp) / channel
            cdir.mkdir()
            shutil.copyfile(dataset_dir / split_file(split_name), cdir / split_file(split_name))
            channels[channel] = cdir
        shutil.copyfile(dataset_dir / SELECTION, channels["train"] / SELECTION)
        yield channels
