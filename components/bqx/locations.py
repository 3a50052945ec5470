"""Reading what deploy and the serving side wrote, from a local directory or an ``s3://`` prefix alike.

* the model repository: ``manifest.json`` maps each pair to its package (``{pair}.tar.gz`` locally,
  ``{pair}-{sha12}.tar.gz`` on S3, where a multi-model endpoint caches by name);
* what was served: the server's prediction log (Parquet files, ``bqx serve --log-dir``) or SageMaker's
  Data Capture of the endpoint (JSON Lines of each request and response), told apart by their files.

S3 goes through boto3 with ``BQX_AWS_ENDPOINT_URL`` honoured (moto in the tests).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from bqx.artifacts import MANIFEST
from bqx.aws import endpoint_url, split_s3


def is_s3(location: str | Path) -> bool:
    return str(location).startswith("s3://")


def _s3() -> object:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url())


def _keys(location: str, suffixes: tuple[str, ...]) -> Iterator[str]:
    bucket, prefix = split_s3(location.rstrip("/") + "/")
    pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)  # type: ignore[attr-defined]
    for page in pages:
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(suffixes):
                yield obj["Key"]


def _files(location: str, suffix: str) -> list[tuple[str, Callable[[], bytes]]]:
    """Each file under a directory (subdirectories included) or S3 prefix whose name ends with ``suffix``,
    sorted by name, with a function that reads it (one S3 client for them all)."""
    if not is_s3(location):
        return [(str(p), p.read_bytes) for p in sorted(Path(location).rglob(f"*{suffix}"))]
    s3, (bucket, _) = _s3(), split_s3(location)
    return [(k, lambda k=k: s3.get_object(Bucket=bucket, Key=k)["Body"].read())  # type: ignore[attr-defined]
            for k in sorted(_keys(location, (suffix,)))]


def write_object(location: str, name: str, data: bytes) -> str:
    """``data`` as one object ``name`` under an S3 prefix (written whole: no reader sees part of it);
    returns its key."""
    bucket, prefix = split_s3(location.rstrip("/") + "/")
    _s3().put_object(Bucket=bucket, Key=prefix + name, Body=data)  # type: ignore[attr-defined]
    return prefix + name


def _read_bytes(location: str, name: str) -> bytes | None:
    """A file of a directory or S3 prefix, None if it is not there."""
    if not is_s3(location):
        path = Path(location) / name
        return path.read_bytes() if path.is_file() else None
    from botocore.exceptions import ClientError

    bucket, prefix = split_s3(location.rstrip("/") + "/")
    try:
        return _s3().get_object(Bucket=bucket, Key=prefix + name)["Body"].read()  # type: ignore[attr-defined]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            return None
        raise


def repository_pairs(repository: str | Path) -> list[str]:
    """The pairs a model repository serves (its ``manifest.json``)."""
    return sorted(read_manifest(repository).get("models", {}))


def read_manifest(repository: str | Path) -> dict:
    """A model repository's ``manifest.json`` (a directory or an S3 prefix)."""
    raw = _read_bytes(str(repository), MANIFEST)
    if raw is None:
        raise FileNotFoundError(f"{repository}: not a model repository (no {MANIFEST}; give what deploy wrote)")
    return json.loads(raw)


def model_file(entry: dict) -> str:
    """The versioned file of a manifest entry (during an A/B test ``target_model`` is the test's alias and
    ``model_file`` the file beside the manifest)."""
    return str(entry.get("model_file") or entry["target_model"])


def repository_file(repository: str | Path, name: str, into: str | Path) -> Path:
    """A file of the repository as a local path (downloaded into ``into`` from S3)."""
    if not is_s3(repository):
        path = Path(repository) / name
        if not path.is_file():
            raise FileNotFoundError(f"model repository {repository} lacks {name}")
        return path
    data = _read_bytes(str(repository), name)
    if data is None:
        raise FileNotFoundError(f"model repository {repository} lacks {name}")
    target = Path(into) / name
    target.write_bytes(data)
    return target


def model_tarball(repository: str | Path, pair: str, into: str | Path) -> Path:
    """The pair's deployed package, as a local file (downloaded into ``into`` from S3)."""
    raw = _read_bytes(str(repository), MANIFEST)
    entries = json.loads(raw).get("models", {}) if raw else {}
    if raw and pair not in entries:
        raise FileNotFoundError(f"model repository {repository} has no model for {pair} "
                                f"(its manifest.json lists {', '.join(sorted(entries)) or 'none'})")
    name = model_file(entries[pair]) if raw else f"{pair}.tar.gz"
    return repository_file(repository, name, into)


PREDICTION_LOG_COLUMNS = ("ts_utc", "pair", "prediction")


def read_served(location: str | Path, pair: str) -> pd.Series:
    """What was served for ``pair``: prediction by bar time (``ts_utc``, UTC), the last one per bar, from
    the server's Parquet prediction log or the endpoint's Data Capture JSON Lines (files under
    ``location``, subdirectories included)."""
    log = served_rows(location)
    return log[log["pair"] == pair].set_index("ts_utc")["prediction"]


def served_rows(location: str | Path) -> pd.DataFrame:
    """Every served prediction: ``ts_utc`` (UTC), ``pair``, ``prediction``, ``variant`` (the A/B variant
    that answered, "" outside an A/B test), the last answer per pair and bar."""
    loc = str(location)
    parquet = _files(loc, ".parquet")
    jsonl = [] if parquet else _files(loc, ".jsonl")
    if parquet:
        frames = [_log_part(name, read()) for name, read in parquet]
    elif jsonl:
        frames = [_capture_part(name, read()) for name, read in jsonl]
    else:
        raise FileNotFoundError(f"nothing served under {loc}: no prediction log (*.parquet) and no Data Capture "
                                "(*.jsonl) files")
    log = pd.concat(frames, ignore_index=True)
    log["ts_utc"] = pd.to_datetime(log["ts_utc"], utc=True)
    return log.drop_duplicates(["pair", "ts_utc"], keep="last").reset_index(drop=True)


def _log_part(name: str, data: bytes) -> pd.DataFrame:
    import io

    df = pd.read_parquet(io.BytesIO(data))
    missing = [c for c in PREDICTION_LOG_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"prediction log {name} lacks column(s) {missing}")
    if "variant" not in df.columns:  # logs written before A/B variants
        df = df.assign(variant="")
    return df[[*PREDICTION_LOG_COLUMNS, "variant"]]


def _capture_part(name: str, data: bytes) -> pd.DataFrame:
    """One Data Capture file: each line a request and the server's response; a response with predictions
    gives a row per prediction (its pair, bar time and value). Warm-up answers and errors carry none."""
    rows = []
    for i, line in enumerate(data.decode().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out = json.loads(line)["captureData"]["endpointOutput"]
            body = base64.b64decode(out["data"]) if out.get("encoding") == "BASE64" else out["data"].encode()
            response = json.loads(body)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"Data Capture file {name}, line {i}: not a captured bqx response ({err})") from None
        for p in response.get("predictions", []) if isinstance(response, dict) else []:
            if p.get("ts_utc") is not None:
                rows.append((p["ts_utc"], response.get("pair"), p.get("prediction"), response.get("variant", "")))
    return pd.DataFrame(rows, columns=[*PREDICTION_LOG_COLUMNS, "variant"])
