"""The served models: loading by name from a SageMaker model directory, a model.tar.gz or s3://, memory
accounting, and least-recently-used eviction under a byte budget.

An evicted model stays *known* (its name and URL are kept), so an invocation reloads it on demand;
only an explicit unload (DELETE /models/<name>) forgets it. A model larger than the whole budget is
refused with 507, which is what SageMaker's multi-model contract expects when memory runs out.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bqx.artifacts import MODEL_CBM
from bqx.model_package import LoadedModel, PackageError, load_dir, sha256_of, unpacked
from bqx.serving.payload import PayloadError

# A loaded CatBoost model holds its flat model (about the .cbm size) plus a fixed cost for the Python
# and C++ objects, the feature index and the online state kept beside it (bench/serve.py measures it).
MODEL_OVERHEAD_BYTES = 2 * 1024 * 1024


@dataclass
class ServedModel:
    name: str
    url: str
    loaded: LoadedModel
    version: str  # first 12 hex digits of the model.cbm sha256
    bytes: int  # accounted memory
    loaded_at: float = field(default_factory=time.time)
    invocations: int = 0

    @property
    def features(self) -> list[str]:
        return self.loaded.features

    @property
    def pair(self) -> str:
        return str(self.loaded.meta.get("pair") or self.loaded.selection.get("pair") or "")

    def describe(self) -> dict:
        """The multi-model contract's model entry, plus what a client needs to call it."""
        return {"modelName": self.name, "modelUrl": self.url, "pair": self.pair, "modelVersion": self.version,
                "target": self.loaded.meta.get("target"), "features": len(self.features),
                "memoryBytes": self.bytes, "invocations": self.invocations}


def charged_bytes(cbm_bytes: int, n_features: int) -> int:
    """Memory charged to a loaded model: its .cbm size, the feature names and a fixed overhead."""
    return cbm_bytes + 64 * n_features + MODEL_OVERHEAD_BYTES


def load_model(name: str, url: str) -> ServedModel:
    """Load from a directory (what SageMaker extracts model.tar.gz into), a .tar.gz file or an s3:// URL
    of one; a package that cannot be read is a 400 naming the file, never a 500."""
    from bqx.serving.sources import TARBALL_SUFFIXES, fetched, is_s3

    if is_s3(url):
        with fetched(url) as tarball:
            return _from_tarball(name, url, tarball)
    path = Path(url)
    if path.is_dir():
        return _from_dir(name, url, path)
    if path.is_file() and path.name.endswith(TARBALL_SUFFIXES):
        return _from_tarball(name, url, path)
    raise PayloadError(404, f"model {name!r}: nothing to load at {url!r} (expected a model directory or model.tar.gz)")


def _from_tarball(name: str, url: str, tarball: Path) -> ServedModel:
    try:
        with unpacked(tarball) as d:
            return _from_dir(name, url, d)
    except PackageError as exc:
        raise PayloadError(400, f"model {name!r} at {url!r} cannot be loaded: {exc}") from None


def _from_dir(name: str, url: str, d: Path) -> ServedModel:
    try:
        loaded = load_dir(d, with_reference=False, predictor="trees")
    except (FileNotFoundError, ValueError) as exc:
        raise PayloadError(400, f"model {name!r} at {url!r} cannot be loaded: {exc}") from None
    cbm = d / MODEL_CBM
    return ServedModel(name, url, loaded, sha256_of(cbm)[:12], charged_bytes(cbm.stat().st_size, len(loaded.features)))


class ModelStore:
    """Thread-safe name -> model map with LRU eviction under ``budget_bytes`` (0 = unlimited)."""

    def __init__(self, budget_bytes: int = 0) -> None:
        self.budget = budget_bytes
        self._loaded: OrderedDict[str, ServedModel] = OrderedDict()
        self._known: dict[str, str] = {}
        self._lock = threading.RLock()
        self.evictions = 0
        self.reloads = 0

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(m.bytes for m in self._loaded.values())

    def load(self, name: str, url: str) -> ServedModel:
        """POST /models: 409 if the name is loaded, 507 if the model alone exceeds the budget."""
        with self._lock:
            if name in self._loaded:
                raise PayloadError(409, f"model {name!r} is already loaded")
        model = load_model(name, url)  # outside the lock: invocations of other models go on meanwhile
        with self._lock:
            if name in self._loaded:
                raise PayloadError(409, f"model {name!r} is already loaded")
            self._known[name] = url
            return self._admit(model)

    def _admit(self, model: ServedModel) -> ServedModel:
        if self.budget and model.bytes > self.budget:
            raise PayloadError(507, f"model {model.name!r} needs {model.bytes:,} bytes; the memory budget is "
                                    f"{self.budget:,} bytes")
        while self.budget and self._loaded and self.used_bytes + model.bytes > self.budget:
            self._loaded.popitem(last=False)
            self.evictions += 1
        self._loaded[model.name] = model
        return model

    def get(self, name: str) -> ServedModel:
        """The model for an invocation, most recently used from now on; an evicted model is reloaded."""
        with self._lock:
            model = self._loaded.get(name)
            if model is not None:
                self._loaded.move_to_end(name)
                return model
            if name not in self._known:
                raise PayloadError(404, f"model {name!r} is not loaded")
            url = self._known[name]
        model = load_model(name, url)
        with self._lock:
            if name in self._loaded:  # another request reloaded it meanwhile
                return self._loaded[name]
            self.reloads += 1
            return self._admit(model)

    def describe(self, name: str) -> dict:
        with self._lock:
            if name not in self._loaded:
                raise PayloadError(404, f"model {name!r} is not loaded")
            return self._loaded[name].describe()

    def unload(self, name: str) -> None:
        with self._lock:
            if name not in self._loaded and name not in self._known:
                raise PayloadError(404, f"model {name!r} is not loaded")
            self._loaded.pop(name, None)
            self._known.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._loaded)

    def page(self, token: str | None, max_results: int) -> dict:
        """GET /models: loaded models in name order, ``max_results`` at a time; the token is the next name."""
        with self._lock:
            names = sorted(self._loaded)
            start = 0 if not token else next((i for i, n in enumerate(names) if n >= token), len(names))
            chosen = names[start:start + max_results]
            out: dict = {"models": [{"modelName": n, "modelUrl": self._loaded[n].url} for n in chosen]}
            if start + max_results < len(names):
                out["nextPageToken"] = names[start + max_results]
            return out


def predict(model: ServedModel, matrix: np.ndarray) -> np.ndarray:
    model.invocations += len(matrix)
    return np.asarray(model.loaded.model.predict(matrix), dtype=np.float64).reshape(-1)  # type: ignore[attr-defined]
