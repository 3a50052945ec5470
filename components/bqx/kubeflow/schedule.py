"""Recurring runs from git: create or update a KFP recurring run idempotently (``bqx schedule``).

The KFP v2 API server ignores ScheduledWorkflow objects applied from git (it only knows schedules it
created), so the GitOps path keeps Pipeline / PipelineVersion objects in git and runs this reconcile
from a CronJob: it finds the recurring run by name in the experiment and leaves it alone when its
pipeline version, cron expression, parameters and service account already match; otherwise it deletes
it and creates it anew (the v2 API has no update for recurring runs).

Every pipeline parameter can be set (``--param name=value``), typed by the pipeline version's own
spec as the server holds it: an unknown name, a value of the wrong type or a required parameter left
out is one line naming it, before anything on the server changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# KFP IR parameter types -> how a text value from the command line becomes that type
_PARSERS = {
    "STRING": str,
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "BOOLEAN": lambda text: {"true": True, "false": False}[text.strip().lower()],
    "LIST": lambda text: json.loads(text) if text.strip().startswith("[") else [p.strip() for p in text.split(",")
                                                                               if p.strip()],
    "STRUCT": json.loads,
}


@dataclass(frozen=True)
class Wanted:
    name: str
    pipeline: str
    version: str
    cron: str
    experiment: str
    params: dict  # name -> text as given; typed against the version's spec when reconciling
    service_account: str = ""  # the Kubernetes service account the run's pods use ("" = the server's default)
    namespace: str = ""  # the user namespace of a multi-user Kubeflow ("" = single-user)

    def matches(self, run: object, version_id: str, params: dict) -> bool:
        trigger = getattr(getattr(run, "trigger", None), "cron_schedule", None)
        ref = getattr(run, "pipeline_version_reference", None)
        current = getattr(getattr(run, "runtime_config", None), "parameters", None) or {}
        return (getattr(trigger, "cron", None) == self.cron and getattr(ref, "pipeline_version_id", None) == version_id
                and dict(current) == params and (getattr(run, "service_account", None) or "") == self.service_account)


def typed_params(spec: dict | None, given: dict) -> dict:
    """``given`` (name -> text) as the types the pipeline declares; without a spec, as given."""
    if not spec:
        return dict(given)
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(f"the pipeline has no parameter {', '.join(unknown)} (it has: {', '.join(sorted(declared))})")
    out = {}
    for name, decl in declared.items():
        if name not in given:
            if not decl.get("isOptional") and "defaultValue" not in decl:
                raise ValueError(f"parameter {name!r} is required: pass --param {name}=...")
            continue
        value, kind = given[name], decl.get("parameterType", "STRING")
        try:
            out[name] = _PARSERS.get(kind, str)(value) if isinstance(value, str) else value
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"parameter {name!r}: {value!r} is not a {kind.lower().replace('_', ' ')}") from None
    return out


def _spec(version: object) -> dict | None:
    spec = getattr(version, "pipeline_spec", None)
    return spec if isinstance(spec, dict) else None


def ensure_recurring_run(client: object, wanted: Wanted) -> str:
    """Returns "unchanged", "created" or "replaced"."""
    c = client
    pipeline_id = c.get_pipeline_id(wanted.pipeline)  # type: ignore[attr-defined]
    if pipeline_id is None:
        raise ValueError(f"pipeline {wanted.pipeline!r} is not on the server: apply manifests/ first")
    versions = c.list_pipeline_versions(pipeline_id, page_size=200).pipeline_versions or []  # type: ignore[attr-defined]
    version = next((v for v in versions if v.display_name == wanted.version), None)
    if version is None:
        raise ValueError(f"pipeline version {wanted.version!r} of {wanted.pipeline!r} is not on the server")
    params = typed_params(_spec(version), wanted.params)
    namespace = wanted.namespace or None
    experiment = c.create_experiment(wanted.experiment, namespace=namespace)  # type: ignore[attr-defined]
    runs = c.list_recurring_runs(experiment_id=experiment.experiment_id, page_size=200).recurring_runs or []  # type: ignore[attr-defined]
    current = next((r for r in runs if r.display_name == wanted.name), None)
    if current is not None and wanted.matches(current, version.pipeline_version_id, params):
        return "unchanged"
    if current is not None:
        c.delete_recurring_run(current.recurring_run_id)  # type: ignore[attr-defined]
    c.create_recurring_run(experiment_id=experiment.experiment_id, job_name=wanted.name,  # type: ignore[attr-defined]
                           cron_expression=wanted.cron, pipeline_id=pipeline_id,
                           version_id=version.pipeline_version_id, params=params, enabled=True,
                           service_account=wanted.service_account or None)
    return "created" if current is None else "replaced"


def params_from(settings_path: str | None, source: str | None, pairs: list[str] | None = None) -> dict:
    """``--source``/``--settings`` and ``--param name=value`` pairs as one name -> text mapping."""
    out: dict = {}
    if source is not None:
        out["source"] = source
    if settings_path:
        with open(settings_path) as fh:
            out["settings_json"] = json.dumps(json.loads(fh.read() or "{}"), sort_keys=True)
    for item in pairs or []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ValueError(f"--param {item!r}: write name=value")
        if name.strip() in out:
            raise ValueError(f"parameter {name.strip()!r} is given twice")
        out[name.strip()] = value
    return out
