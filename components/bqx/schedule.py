"""Recurring runs from git: create or update a KFP recurring run idempotently (``bqx schedule``).

The KFP v2 API server ignores ScheduledWorkflow objects applied from git (it only knows schedules it
created), so the GitOps path keeps Pipeline / PipelineVersion objects in git and runs this reconcile
from a CronJob: it finds the recurring run by name in the experiment and leaves it alone when its
pipeline version, cron expression and parameters already match; otherwise it deletes it and creates
it anew (the v2 API has no update for recurring runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Wanted:
    name: str
    pipeline: str
    version: str
    cron: str
    experiment: str
    params: dict

    def matches(self, run: object, version_id: str) -> bool:
        trigger = getattr(getattr(run, "trigger", None), "cron_schedule", None)
        ref = getattr(run, "pipeline_version_reference", None)
        params = getattr(getattr(run, "runtime_config", None), "parameters", None) or {}
        return (getattr(trigger, "cron", None) == self.cron and getattr(ref, "pipeline_version_id", None) == version_id
                and dict(params) == self.params)


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
    experiment = c.create_experiment(wanted.experiment)  # type: ignore[attr-defined]  # returns the existing one
    runs = c.list_recurring_runs(experiment_id=experiment.experiment_id, page_size=200).recurring_runs or []  # type: ignore[attr-defined]
    current = next((r for r in runs if r.display_name == wanted.name), None)
    if current is not None and wanted.matches(current, version.pipeline_version_id):
        return "unchanged"
    if current is not None:
        c.delete_recurring_run(current.recurring_run_id)  # type: ignore[attr-defined]
    c.create_recurring_run(experiment_id=experiment.experiment_id, job_name=wanted.name,  # type: ignore[attr-defined]
                           cron_expression=wanted.cron, pipeline_id=pipeline_id,
                           version_id=version.pipeline_version_id, params=wanted.params, enabled=True)
    return "created" if current is None else "replaced"


def params_from(settings_path: str | None, source: str) -> dict:
    settings_json = open(settings_path).read() if settings_path else "{}"  # noqa: SIM115
    return {"source": source, "settings_json": json.dumps(json.loads(settings_json or "{}"), sort_keys=True)}
