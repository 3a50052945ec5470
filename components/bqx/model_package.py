"""A pair's model.tar.gz: ``model.cbm``, ``model.json`` (the same model as CatBoost's JSON export, which
serving evaluates without the catboost package), ``selection.json`` (ordered features), ``meta.json``
(catalog version, settings hash, validation residual quantiles) and ``reference.parquet`` (the drift
reference).

Packages are written byte-reproducibly (the same model gives the same tarball and the same served
``model_version``) and read defensively: a package comes from a file system or bucket the server does
not control, so a member that is a link or leaves the archive root, an archive that unpacks to more than
:data:`MAX_UNPACKED_BYTES`, and files that do not parse are refused with :class:`PackageError`.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bqx.artifacts import META, MODEL_CBM, MODEL_JSON, REFERENCE, SELECTION

if TYPE_CHECKING:
    from bqx.config import Settings

REQUIRED = (MODEL_CBM, SELECTION, META)
MAX_UNPACKED_BYTES = 4 * 2**30  # a 250-feature model with its reference is tens of MB
# CatBoost stamps every saved model with these; they change on every fit and would change the version
VOLATILE_MODEL_INFO = ("model_guid", "train_finish_time")


class PackageError(ValueError):
    """A model package that cannot be read; the message names the package and the member or file."""


@dataclass
class LoadedModel:
    model: object  # catboost.CatBoostRegressor
    features: list[str]
    selection: dict
    meta: dict

    reference: object = None  # pandas DataFrame of training rows with predictions, when packaged

    def predict(self, rows: object) -> object:
        return self.model.predict(rows)  # type: ignore[attr-defined]


def feature_settings(selection: dict, override: Settings | None = None) -> tuple[Settings, dict | None]:
    """The settings a model's features are computed with (the package's, or ``override``) and its
    ``online_state``: the bar interval it was trained on when the settings leave it open, and the pairs
    of the panel its cross-pair features were computed on. Serving and batch prediction both use it."""
    from bqx.config import Settings

    if override is None:
        data = dict(selection.get("settings") or {})
        known = {f.name for f in dataclasses.fields(Settings)}
        override = Settings.from_dict({k: v for k, v in data.items() if k in known})
    settings = override
    state = selection.get("online_state")
    snapshot = state if isinstance(state, dict) else None
    if settings.features.bar_interval_s is None and snapshot and snapshot.get("bar_interval_s"):
        settings = settings.replace(bar_interval_s=int(snapshot["bar_interval_s"]))
    if snapshot and snapshot.get("pairs"):  # the run's panel, which may be a subset of the 28 pairs
        settings = settings.replace(pairs=tuple(snapshot["pairs"]))
    return settings, snapshot


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- writing -------------------------------------------------------------------------------------------
def save_model(model: object, model_dir: str | Path) -> None:
    """model.cbm and model.json without the fit's GUID and finish time, so equal fits give equal bytes."""
    info = model.get_metadata()  # type: ignore[attr-defined]
    for key in VOLATILE_MODEL_INFO:
        if key in info:
            del info[key]
    model.save_model(str(Path(model_dir) / MODEL_CBM))  # type: ignore[attr-defined]
    model.save_model(str(Path(model_dir) / MODEL_JSON), format="json")  # type: ignore[attr-defined]


def write_tarball(model_dir: str | Path, out_path: str | Path) -> Path:
    """model.tar.gz with the model dir's files at the archive root (SageMaker's layout), reproducibly:
    sorted names, no owners or times in the tar or gzip headers; written to a temp name, then renamed."""
    src, out = Path(model_dir), Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in sorted(p for p in src.iterdir() if p.is_file()):
            info = tarfile.TarInfo(f.name)
            info.size, info.mode, info.mtime = f.stat().st_size, 0o644, 0
            with open(f, "rb") as fh:
                tar.addfile(info, fh)
    os.replace(tmp, out)
    return out


# -- reading -------------------------------------------------------------------------------------------
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)  # FilterError is a TarError
# tarfile's "data" filter (Python >= 3.11.4) on top of _members' own checks; Debian 12's 3.11.2 lacks it
_DATA_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _members(tar: tarfile.TarFile, name: str) -> list[tarfile.TarInfo]:
    """The regular files at the archive root; anything that could write outside it is refused."""
    keep, total = [], 0
    for m in tar.getmembers():
        parts = PurePosixPath(m.name).parts
        if m.name.startswith(("/", "\\")) or ".." in parts or "\x00" in m.name:
            raise PackageError(f"{name}: member {m.name!r} would be written outside the package directory")
        if not (m.isfile() or m.isdir()):
            raise PackageError(f"{name}: member {m.name!r} is a link or special file; packages hold regular files")
        total += m.size
        if total > MAX_UNPACKED_BYTES:
            raise PackageError(f"{name}: unpacks to more than {MAX_UNPACKED_BYTES:,} bytes")
        if m.isfile() and len([p for p in parts if p != "."]) == 1:
            if len(parts[-1].encode("utf-8", "surrogateescape")) > 255:  # NAME_MAX: the file could not be created
                raise PackageError(f"{name}: member name {m.name[:40]!r}... is longer than 255 bytes")
            keep.append(m)
    return keep


@contextmanager
def unpacked(path: str | Path) -> Iterator[Path]:
    """model.tar.gz unpacked into a temp dir (the regular files at the archive root), removed on exit."""
    name = Path(path).name
    with tempfile.TemporaryDirectory(prefix="bqx-model-") as tmp:
        try:
            with tarfile.open(path, "r:gz") as tar:
                tar.extractall(tmp, members=_members(tar, name), **_DATA_FILTER)
        except _ARCHIVE_ERRORS as exc:
            raise PackageError(f"{name}: not a readable gzip-compressed tar archive ({exc})") from None
        yield Path(tmp)


def _json_object(path: Path) -> dict:
    try:
        obj = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise PackageError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise PackageError(f"{path.name} must hold a JSON object, not {type(obj).__name__}")
    return obj


def load_dir(model_dir: str | Path, with_reference: bool = True, predictor: str = "catboost") -> LoadedModel:
    """Load a model directory. ``predictor`` "catboost" loads model.cbm with CatBoost (training and
    evaluation need its API); "trees" evaluates model.json with numpy (serving: no catboost package),
    falling back to CatBoost for packages written before model.json was."""
    d = Path(model_dir)
    missing = [f for f in REQUIRED if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"model at {d} lacks {', '.join(missing)}")
    selection, meta = _json_object(d / SELECTION), _json_object(d / META)
    features = selection.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise PackageError("selection.json: 'features' must be a non-empty list of feature names")
    model = _trees(d) if predictor == "trees" and (d / MODEL_JSON).is_file() else _catboost(d)
    if list(model.feature_names_ or []) != features:
        raise PackageError(f"model at {d}: feature names differ from selection.json")
    reference = None
    if with_reference and (d / REFERENCE).exists():
        import pandas as pd

        reference = pd.read_parquet(d / REFERENCE)
    return LoadedModel(model, list(features), selection, meta, reference)


def _catboost(d: Path) -> object:
    try:
        from catboost import CatBoostError, CatBoostRegressor
    except ImportError:
        raise PackageError("the package has no model.json (written before it was added) and the catboost "
                           "package is not installed to read model.cbm: retrain, or install bqx-ml[model]") from None
    model = CatBoostRegressor()
    try:
        model.load_model(str(d / MODEL_CBM))
    except CatBoostError as exc:
        raise PackageError(f"model.cbm is not a CatBoost model: {str(exc).splitlines()[0][:200]}") from None
    return model


def _trees(d: Path) -> object:
    from bqx.serving.trees import load_trees

    try:
        return load_trees(d / MODEL_JSON)
    except ValueError as exc:  # not JSON, or a model the evaluator does not cover (it says which)
        raise PackageError(str(exc) if str(exc).startswith(MODEL_JSON) else f"{MODEL_JSON}: {exc}") from None
    except (KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise PackageError(f"model.json is not a CatBoost JSON export: {type(exc).__name__}: {exc}") from None


def load_tarball(path: str | Path) -> LoadedModel:
    """Unpack model.tar.gz into a temp dir and load it."""
    with unpacked(path) as d:
        return load_dir(d)

