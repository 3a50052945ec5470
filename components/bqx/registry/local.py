"""A model registry in a directory: ``{root}/{pair}/v{NNNN}/`` holds model.tar.gz, the model card, the
metrics and ``version.json`` (the record). A version directory is written under a temporary name and
renamed, so a registry never holds half a version; a status change rewrites version.json atomically."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from bqx.artifacts import METRICS, MODEL_CARD, MODEL_TARBALL, VERSION
from bqx.endpoint import ModelRef
from bqx.io import read_json, write_json
from bqx.model_package import sha256_of
from bqx.pairs import check_pair
from bqx.registry.gate import APPROVED, PENDING, REJECTED, Decision
from bqx.registry.version import Version

STATUSES = (APPROVED, REJECTED, PENDING)


class LocalRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, pair: str, version: int) -> Path:
        return self.root / pair / f"v{version:04d}"

    def versions(self, pair: str) -> list[Version]:
        folder = self.root / pair
        if not folder.is_dir():
            return []
        out = []
        for d in sorted(folder.glob("v[0-9][0-9][0-9][0-9]")):
            record = read_json(d / VERSION)
            out.append(Version(**{**record, "location": str(d / MODEL_TARBALL)}))
        return out

    def register(self, ref: ModelRef, decision: Decision) -> tuple[Version, bool]:
        digest = sha256_of(ref.tarball)
        known = self.versions(ref.pair)
        for v in known:
            if v.sha256 == digest:
                return v, False
        number = (known[-1].version if known else 0) + 1
        final = self._dir(ref.pair, number)
        tmp = final.with_name(f".{final.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copyfile(ref.tarball, tmp / MODEL_TARBALL)
        (tmp / MODEL_CARD).write_text(ref.card)
        (tmp / METRICS).write_text(json.dumps(ref.metrics, indent=2, sort_keys=True))
        version = Version(ref.pair, number, digest, decision.status, decision.reason, str(final / MODEL_TARBALL),
                          dict(ref.metrics), dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        write_json(_record(version), tmp / VERSION)
        tmp.rename(final)
        return version, True

    def approved(self, pair: str) -> Version | None:
        ok = [v for v in self.versions(pair) if v.status == APPROVED]
        return ok[-1] if ok else None

    def fetch(self, version: Version, dest: Path) -> Path:
        return Path(version.location)  # already a local file: nothing to copy

    def set_status(self, pair: str, version: int, status: str, reason: str) -> Version:
        check_pair(pair)
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: one of {', '.join(STATUSES)}")
        d = self._dir(pair, version)
        if not (d / VERSION).is_file():
            have = ", ".join(f"v{v.version}" for v in self.versions(pair)) or "none"
            raise ValueError(f"registry {self.root}: {pair} has no version {version} (versions: {have})")
        record = {**read_json(d / VERSION), "status": status, "reason": reason}
        write_json(record, d / VERSION)
        return Version(**{**record, "location": str(d / MODEL_TARBALL)})


def _record(version: Version) -> dict:
    record = version.to_dict()
    record.pop("location")  # the directory is the location; a moved registry stays valid
    return record
