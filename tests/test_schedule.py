"""The recurring-run reconcile logic against an in-memory stand-in of the KFP API client (no KFP API
server can run here); it checks the decisions: create once, leave alone, replace on change."""

from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from bqx.kubeflow.compile import load_compiled
from bqx.kubeflow.schedule import Wanted, ensure_recurring_run, params_from, typed_params

SPEC, _ = load_compiled(Path(__file__).resolve().parents[1] / "pipelines" / "bqx_pipeline.yaml")


class FakeKfp:
    """The subset of kfp.Client the reconcile uses, keeping recurring runs in a dict."""

    def __init__(self):
        self.runs: dict[str, NS] = {}
        self.calls: list[str] = []
        self.experiments: list[tuple] = []

    def get_pipeline_id(self, name):
        return "p-1" if name == "bqx-train" else None

    def list_pipeline_versions(self, pipeline_id, page_size):
        return NS(pipeline_versions=[NS(display_name="bqx-train-v0-1-0-aaaa", pipeline_version_id="v-a",
                                        pipeline_spec=SPEC),
                                     NS(display_name="bqx-train-v0-1-0-bbbb", pipeline_version_id="v-b",
                                        pipeline_spec=SPEC)])

    def create_experiment(self, name, namespace=None):
        self.experiments.append((name, namespace))
        return NS(experiment_id="e-1")

    def list_recurring_runs(self, experiment_id, page_size):
        return NS(recurring_runs=list(self.runs.values()))

    def delete_recurring_run(self, run_id):
        self.calls.append(f"delete {run_id}")
        self.runs = {k: r for k, r in self.runs.items() if r.recurring_run_id != run_id}

    def create_recurring_run(self, experiment_id, job_name, cron_expression, pipeline_id, version_id, params, enabled,
                             service_account=None):
        self.calls.append(f"create {job_name}")
        self.runs[job_name] = NS(display_name=job_name, recurring_run_id=f"r-{len(self.calls)}",
                                 trigger=NS(cron_schedule=NS(cron=cron_expression)),
                                 pipeline_version_reference=NS(pipeline_version_id=version_id),
                                 runtime_config=NS(parameters=dict(params)), service_account=service_account)


def test_reconcile_creates_once_then_leaves_alone_then_replaces_on_change():
    kfp = FakeKfp()
    wanted = Wanted("bqx-weekdays", "bqx-train", "bqx-train-v0-1-0-aaaa", "0 0 6 * * 1-5", "bqx",
                    {"source": "s3://b/bars", "settings_json": "{}"})
    assert ensure_recurring_run(kfp, wanted) == "created"
    assert ensure_recurring_run(kfp, wanted) == "unchanged"
    assert kfp.calls == ["create bqx-weekdays"]
    newer = Wanted(**{**wanted.__dict__, "version": "bqx-train-v0-1-0-bbbb"})
    assert ensure_recurring_run(kfp, newer) == "replaced"
    assert kfp.calls[1:] == ["delete r-1", "create bqx-weekdays"]
    assert kfp.runs["bqx-weekdays"].pipeline_version_reference.pipeline_version_id == "v-b"
    recron = Wanted(**{**newer.__dict__, "cron": "0 30 6 * * 1-5"})
    assert ensure_recurring_run(kfp, recron) == "replaced"


def test_reconcile_names_what_is_missing():
    kfp = FakeKfp()
    with pytest.raises(ValueError, match="pipeline 'other' is not on the server"):
        ensure_recurring_run(kfp, Wanted("r", "other", "v", "0 0 6 * * *", "bqx", {}))
    with pytest.raises(ValueError, match="pipeline version 'nope' of 'bqx-train'"):
        ensure_recurring_run(kfp, Wanted("r", "bqx-train", "nope", "0 0 6 * * *", "bqx", {}))


def test_every_pipeline_parameter_is_typed_by_the_versions_spec():
    given = params_from(None, "s3://b/bars", ["pairs=eurusd, usdjpy", "train_backend=sagemaker",
                                               "deploy_backend=sagemaker"])
    assert typed_params(SPEC, given) == {"source": "s3://b/bars", "pairs": ["eurusd", "usdjpy"],
                                         "train_backend": "sagemaker", "deploy_backend": "sagemaker"}
    assert typed_params(SPEC, {"source": "s", "pairs": '["eurusd"]'})["pairs"] == ["eurusd"]  # JSON lists too
    with pytest.raises(ValueError, match="no parameter trian_backend .*train_backend"):
        typed_params(SPEC, {"source": "s", "trian_backend": "x"})
    with pytest.raises(ValueError, match="parameter 'source' is required"):
        typed_params(SPEC, {"pairs": "eurusd"})
    with pytest.raises(ValueError, match="'pairs': .* is not a list"):
        typed_params(SPEC, {"source": "s", "pairs": "[1,"})
    with pytest.raises(ValueError, match="write name=value"):
        params_from(None, None, ["pairs"])
    with pytest.raises(ValueError, match="'source' is given twice"):
        params_from(None, "s3://a", ["source=s3://b"])


def test_a_new_service_account_or_parameter_replaces_the_run_in_its_namespace():
    kfp = FakeKfp()
    wanted = Wanted("bqx-weekdays", "bqx-train", "bqx-train-v0-1-0-aaaa", "0 0 6 * * 1-5", "bqx",
                    {"source": "s3://b/bars", "pairs": "eurusd,usdjpy"}, "bqx-pipelines", "bqx-prod")
    assert ensure_recurring_run(kfp, wanted) == "created"
    run = kfp.runs["bqx-weekdays"]
    assert run.service_account == "bqx-pipelines" and run.runtime_config.parameters["pairs"] == ["eurusd", "usdjpy"]
    assert kfp.experiments[0] == ("bqx", "bqx-prod")
    assert ensure_recurring_run(kfp, wanted) == "unchanged"
    assert ensure_recurring_run(kfp, Wanted(**{**wanted.__dict__, "service_account": "other"})) == "replaced"
    moved = Wanted(**{**wanted.__dict__, "service_account": "other", "params": {**wanted.params, "pairs": "eurusd"}})
    assert ensure_recurring_run(kfp, moved) == "replaced"
