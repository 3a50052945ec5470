"""A pair's model.tar.gz: ``model.cbm``, ``selection.json`` (ordered features), ``meta.json``
(catalog version, settings hash, validation residual quantiles) and ``reference.parquet`` (the drift
reference). Loading checks the first three are there."""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("model.cbm", "selection.json", "meta.json")


@dataclass
class LoadedModel:
    model: object  # catboost.CatBoostRegressor
    features: list[str]
    selection: dict
    meta: dict

    reference: object = None  # pandas DataFrame of training rows with predictions, when packaged

    def predict(self, rows: object) -> object:
        return self.model.predict(rows)  # type: ignore[attr-defined]


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_dir(model_dir: str | Path, with_reference: bool = True) -> LoadedModel:
    from catboost import CatBoostRegressor

    d = Path(model_dir)
    missing = [f for f in REQUIRED if not (d / f).exists()]
    if missing:
        raise FileNotFoundError(f"model at {d} lacks {', '.join(missing)}")
    model = CatBoostRegressor()
    model.load_model(str(d / "model.cbm"))
    selection = json.loads((d / "selection.json").read_text())
    meta = json.loads((d / "meta.json").read_text())
    if list(model.feature_names_) != selection["features"]:
        raise ValueError(f"model at {d}: feature names differ from selection.json")
    reference = None
    if with_reference and (d / "reference.parquet").exists():
        import pandas as pd

        reference = pd.read_parquet(d / "reference.parquet")
    return LoadedModel(model, list(selection["features"]), selection, meta, reference)


@contextmanager
def unpacked(path: str | Path) -> Iterator[Path]:
    """model.tar.gz unpacked into a temp dir (only regular files at the archive root), removed on exit."""
    with tarfile.open(path, "r:gz") as tar, tempfile.TemporaryDirectory(prefix="bqx-model-") as tmp:
        members = [m for m in tar.getmembers() if m.isfile() and "/" not in m.name.strip("./")]
        tar.extractall(tmp, members=members, filter="data")
        yield Path(tmp)


def load_tarball(path: str | Path) -> LoadedModel:
    """Unpack model.tar.gz into a temp dir and load it."""
    with unpacked(path) as d:
        return load_dir(d)
