"""Strict validation of custom resources against the ACK controller's CRD schemas.

A cluster with strict field validation (kubectl's default) refuses a field its CRD does not declare; the
schemas leave ``additionalProperties`` open, so :func:`strict` closes every object that lists its
properties. Used by ``bqx ack-manifests --crds DIR`` and by the tests' Kubernetes API stand-in.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml


def strict(schema: dict) -> dict:
    """The schema with unknown members refused wherever an object declares its properties."""
    out = copy.deepcopy(schema)

    def close(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(out)
    return out


def load(folder: str | Path) -> dict[str, dict]:
    """kind -> strict openAPIV3Schema of each CRD (``*.yaml``) in ``folder``; metadata stays open, as the API
    server checks it itself."""
    schemas = {}
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise ValueError(f"no CRD files (*.yaml) in {folder}")
    for f in files:
        crd = yaml.safe_load(f.read_text())
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            raise ValueError(f"{f}: not a CustomResourceDefinition")
        version = next(v for v in crd["spec"]["versions"] if v.get("served", True))
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema["properties"]["metadata"] = {"type": "object"}
        schemas[crd["spec"]["names"]["kind"]] = schema
    return schemas


def problems(obj: dict, schemas: dict[str, dict]) -> list[str]:
    """Every schema violation of ``obj`` as ``path: message``; empty when it is valid."""
    import jsonschema

    kind = obj.get("kind", "")
    if kind not in schemas:
        return [f"kind: no CRD for {kind!r} (have {', '.join(sorted(schemas))})"]
    validator = jsonschema.Draft7Validator(schemas[kind])
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(object)'}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]
