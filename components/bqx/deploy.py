"""The deploy stage, local backend: a model repository laid out like a multi-model endpoint's prefix.

``{repo}/{pair}.tar.gz`` for every pair (the TargetModel names a multi-model endpoint would use) and
``manifest.json`` (pair -> file, sha256, bytes, catalog version, settings hash, metrics). Deploying the
same models again changes nothing; files are replaced atomically.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bqx.io import atomic_path, read_json, write_json
from bqx.model_package import sha256_of


@dataclass(frozen=True)
class ModelRef:
    pair: str
    tarball: Path
    meta: dict


def deploy_local(models: list[ModelRef], repo: str | Path) -> dict:
    """Copy each pair's model.tar.gz into the repository and write the manifest; returns the manifest."""
    repo = Path(repo)
    repo.mkdir(parents=True, exist_ok=True)
    manifest_path = repo / "manifest.json"
    old = read_json(manifest_path) if manifest_path.exists() else {"models": {}}
    entries: dict[str, dict] = dict(old.get("models", {}))
    changed = []
    for ref in sorted(models, key=lambda r: r.pair):
        digest = sha256_of(ref.tarball)
        name = f"{ref.pair}.tar.gz"
        target = repo / name
        if not (target.exists() and entries.get(ref.pair, {}).get("sha256") == digest):
            with atomic_path(target) as tmp:
                shutil.copyfile(ref.tarball, tmp)
            changed.append(ref.pair)
        entries[ref.pair] = {"target_model": name, "sha256": digest, "bytes": target.stat().st_size,
                             **{k: ref.meta.get(k) for k in ("catalog_version", "settings_hash", "n_features")}}
    manifest = {"models": dict(sorted(entries.items())), "changed": changed}
    if old.get("models") != manifest["models"] or changed:
        write_json(manifest, manifest_path)
    return manifest
