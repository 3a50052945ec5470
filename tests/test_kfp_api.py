"""`bqx submit` and `bqx schedule` through the real kfp Client against a KFP v2beta1 API stand-in
served over HTTP on 127.0.0.1 (tests/kfp_standin.py)."""

import json
from pathlib import Path

from kfp_standin import KfpStandIn

from bqx.cli import main
from bqx.kubeflow.compile import load_compiled

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipelines" / "bqx_pipeline.yaml"


def test_submit_uploads_a_version_and_starts_a_run(tmp_path: Path, capsys):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"selection": {"n_select": 120}}))
    with KfpStandIn() as kfp:
        for version in ("v1", "v2"):
            assert main(["submit", "--host", kfp.url, "--package", str(PACKAGE), "--version", version,
                         "--source", "s3://bars/fx", "--settings", str(settings), "--run-name", f"run-{version}"]) == 0
        st = kfp.state
    assert "submitted run run-" in capsys.readouterr().out
    assert [p["display_name"] for p in st.pipelines.values()] == ["bqx-train"]  # created once, then versioned
    pid = next(iter(st.pipelines))
    named = {v["display_name"]: v for v in st.versions.values()}
    assert {"v1", "v2"} <= set(named)
    compiled, _ = load_compiled(PACKAGE)
    assert st.specs[named["v2"]["pipeline_version_id"]] == compiled
    runs = list(st.runs.values())
    assert [r["display_name"] for r in runs] == ["run-v1", "run-v2"]
    last = runs[-1]
    assert last["pipeline_version_reference"] == {"pipeline_id": pid,
                                                  "pipeline_version_id": named["v2"]["pipeline_version_id"]}
    assert last["runtime_config"]["parameters"]["source"] == "s3://bars/fx"
    assert json.loads(last["runtime_config"]["parameters"]["settings_json"]) == {"selection": {"n_select": 120}}
    assert last["experiment_id"] in st.experiments and len(st.experiments) == 1  # the experiment is reused


def test_schedule_creates_then_leaves_alone_then_replaces(tmp_path: Path, capsys):
    token = tmp_path / "token"
    token.write_text("projected-sa-token")
    with KfpStandIn() as kfp:
        assert main(["submit", "--host", kfp.url, "--package", str(PACKAGE), "--version", "2026.11.25",
                     "--source", "s3://bars/fx"]) == 0
        submitted = len(kfp.state.requests)

        def args(version: str = "2026.11.25", cron: str = "0 0 6 * * 1-5") -> list[str]:
            return ["schedule", "--host", kfp.url, "--name", "bqx-nightly", "--version", version, "--cron", cron,
                    "--source", "s3://bars/fx", "--param", "pairs=eurusd,usdjpy", "--param", "train_backend=sagemaker",
                    "--param", "deploy_backend=sagemaker", "--service-account", "bqx-pipelines", "--token-path",
                    str(token)]

        assert main(args()) == 0
        first = dict(kfp.state.recurring)
        assert main(args()) == 0
        assert kfp.state.recurring == first  # same version, cron and parameters: nothing touched
        assert main(args(cron="0 30 6 * * 1-5")) == 0
        st = kfp.state
        missing = main(args(version="no-such-version"))
    out = capsys.readouterr()
    assert all(f"bqx-nightly: {what}" in out.out for what in ("created", "unchanged", "replaced"))
    (rec,) = st.recurring.values()
    assert rec["recurring_run_id"] not in first and rec["display_name"] == "bqx-nightly"
    assert rec["trigger"]["cron_schedule"]["cron"] == "0 30 6 * * 1-5"
    assert rec["pipeline_version_reference"]["pipeline_version_id"] in st.versions
    assert missing == 1 and "no-such-version" in out.err
    # every pipeline parameter from the command line, typed by the version's spec; the run's pods use the IRSA
    # service account; every call to the API carried the projected token
    assert rec["runtime_config"]["parameters"] == {"source": "s3://bars/fx", "pairs": ["eurusd", "usdjpy"],
                                                   "train_backend": "sagemaker", "deploy_backend": "sagemaker"}
    assert rec["service_account"] == "bqx-pipelines"
    assert set(st.authorization[submitted:]) == {"Bearer projected-sa-token"}
