"""The model registry and its gate: every model registered, the gate's decision, what serves each pair;
a directory registry, and SageMaker's Model Registry on moto_server (botocore's Stubber checks the
CreateModelPackage request against the real service model, which moto does not)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from test_training import HP, _channels

from bqx import deploy
from bqx.config import RegistrySettings, Settings
from bqx.endpoint import ModelRef
from bqx.registry.gate import APPROVED, PENDING, REJECTED, decide
from bqx.registry.local import LocalRegistry
from bqx.registry.promote import promote
from bqx.reports import deploy_markdown
from bqx.train.local import train_local

GOOD = {"model_rmse": 0.90, "zero_rmse": 1.00, "persistence_rmse": 1.40}
BAD = {"model_rmse": 1.05, "zero_rmse": 1.00, "persistence_rmse": 1.40}


def test_the_gate_needs_both_baselines_beaten_by_the_margin():
    on = RegistrySettings()
    assert decide(GOOD, on).status == APPROVED and "beats zero 1, persistence 1.4 by 10.0%" in decide(GOOD, on).reason
    assert decide(BAD, on).status == REJECTED and "does not beat zero 1, persistence 1.4" in decide(BAD, on).reason
    # a model behind persistence only is rejected too
    assert decide({**GOOD, "persistence_rmse": 0.85}, on).status == REJECTED
    # the margin is a fraction of the better baseline's RMSE: 10 % better passes 5 %, fails 15 %
    assert decide(GOOD, RegistrySettings(min_improvement=0.05)).status == APPROVED
    strict = decide(GOOD, RegistrySettings(min_improvement=0.15))
    assert strict.status == REJECTED and "by 15.0% (needs < 0.85)" in strict.reason
    assert decide({**GOOD, "model_rmse": 1.00}, on).status == REJECTED  # a tie is not a win
    assert decide({**GOOD, "model_rmse": math.nan}, on).reason == "no test-split RMSE for model"
    assert decide({"model_rmse": 0.5}, on).reason == "no test-split RMSE for zero, persistence"
    assert decide(BAD, RegistrySettings(gate=False)).status == APPROVED
    assert decide(GOOD, RegistrySettings(manual_approval=True)).status == PENDING
    assert decide(BAD, RegistrySettings(manual_approval=True)).status == REJECTED
    with pytest.raises(ValueError, match="registry.min_improvement"):
        RegistrySettings(min_improvement=1.5)


def _models(tmp_path: Path, n: int = 2) -> list[Path]:
    """``n`` different real model packages (different seeds)."""
    out = []
    for i in range(n):
        path = tmp_path / f"m{i}" / "model.tar.gz"
        train_local(_channels(tmp_path / f"ch{i}"), {**HP, "random_seed": str(i + 1)}, path)
        out.append(path)
    return out


def _ref(tarball: Path, metrics: dict) -> ModelRef:
    return ModelRef("eurusd", tarball, {"catalog_version": "c0ffee", "n_features": 3}, metrics, "# card\n")


def test_local_registry_versions_and_what_serves(tmp_path):
    first, second = _models(tmp_path)
    registry = LocalRegistry(tmp_path / "registry")
    settings = Settings()
    (s,) = promote([_ref(first, GOOD)], registry, settings, tmp_path / "w")
    assert (s.candidate.version, s.candidate.status, s.serving.version) == (1, APPROVED, 1)
    assert s.ref.tarball == first and s.why.startswith("eurusd v1 (approved: test RMSE 0.9 beats")
    # the same model again is the same version; nothing new is written
    (again,) = promote([_ref(first, GOOD)], registry, settings, tmp_path / "w")
    assert again.candidate.version == 1 and len(registry.versions("eurusd")) == 1
    # a worse model is registered as v2, rejected, and v1 keeps serving (its package, from the registry)
    (worse,) = promote([_ref(second, BAD)], registry, settings, tmp_path / "w")
    assert (worse.candidate.version, worse.candidate.status, worse.serving.version) == (2, REJECTED, 1)
    assert worse.ref.tarball.read_bytes() == first.read_bytes() and worse.ref.meta["registry_version"] == 1
    assert worse.ref.meta["catalog_version"] == "c0ffee"  # the kept version's own meta.json
    assert worse.why.startswith("eurusd v1 kept: eurusd v2 is Rejected (test RMSE 1.05 does not beat")
    v2 = tmp_path / "registry" / "eurusd" / "v0002"
    assert json.loads((v2 / "metrics.json").read_text()) == BAD and (v2 / "model_card.md").read_text() == "# card\n"
    assert json.loads((v2 / "version.json").read_text())["status"] == REJECTED
    # a hand approval of v2 makes it the one the next deploy serves
    registry.set_status("eurusd", 2, APPROVED, "reviewed: the regime changed")
    (after,) = promote([_ref(second, BAD)], registry, settings, tmp_path / "w")
    assert after.serving.version == 2 and after.ref.tarball == second
    with pytest.raises(ValueError, match=r"eurusd has no version 7 \(versions: v1, v2\)"):
        registry.set_status("eurusd", 7, APPROVED, "")


def test_nothing_serves_a_pair_without_an_approved_version(tmp_path):
    (only,) = _models(tmp_path, 1)
    settings = Settings(registry=RegistrySettings(manual_approval=True))
    summary = deploy.run([_ref(only, GOOD)], "local", settings, tmp_path / "repo")
    (s,) = summary.served
    assert s.candidate.status == PENDING and s.serving is None and s.ref is None
    assert summary.repository.models == {} and summary.not_served == {"eurusd": s.why}
    assert "waits for manual approval" in s.why and "no earlier version is approved" in s.why
    report = deploy_markdown(summary)
    assert "| eurusd | v1 PendingManualApproval | nothing |" in report
    # the registry defaults to the repository's own directory
    assert (tmp_path / "repo" / "registry" / "eurusd" / "v0001" / "model.tar.gz").is_file()


def test_registry_command_lists_and_approves(tmp_path, capsys):
    from bqx.cli import main

    (only,) = _models(tmp_path, 1)
    LocalRegistry(tmp_path / "reg").register(_ref(only, BAD), decide(BAD, RegistrySettings()))
    assert main(["registry", "list", "--pair", "eurusd", "--dir", str(tmp_path / "reg")]) == 0
    assert "v1    Rejected" in capsys.readouterr().out
    assert main(["registry", "approve", "--pair", "eurusd", "--version", "1", "--dir", str(tmp_path / "reg"),
                 "--reason", "accepted for the ECB week"]) == 0
    assert "eurusd v1 is Approved: accepted for the ECB week" in capsys.readouterr().out
    assert LocalRegistry(tmp_path / "reg").approved("eurusd").version == 1
    assert main(["registry", "approve", "--pair", "eurusd", "--dir", str(tmp_path / "reg")]) != 0
    assert "needs --version" in capsys.readouterr().err


def test_sagemaker_model_registry_on_moto(tmp_path, aws_settings, moto_server):
    from bqx.registry.sagemaker import SageMakerRegistry, group_name

    first, second = _models(tmp_path)
    registry = SageMakerRegistry(aws_settings)
    (s,) = promote([_ref(first, GOOD)], registry, aws_settings, tmp_path / "w")
    assert (s.candidate.version, s.candidate.status) == (1, APPROVED)
    sm = boto3.client("sagemaker", endpoint_url=moto_server, region_name="us-east-1")
    group = group_name(aws_settings, "eurusd")
    assert group == "bqx-ml-eurusd" and sm.describe_model_package_group(ModelPackageGroupName=group)
    (package,) = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    desc = sm.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    assert desc["ModelApprovalStatus"] == APPROVED and desc["CustomerMetadataProperties"]["model_rmse"] == "0.9"
    container = desc["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == aws_settings.aws.serve_image
    assert container["ModelDataUrl"].startswith(f"s3://{aws_settings.aws.bucket}/bqx-ml/registry/eurusd/")
    (worse,) = promote([_ref(second, BAD)], registry, aws_settings, tmp_path / "w")
    assert (worse.candidate.version, worse.candidate.status, worse.serving.version) == (2, REJECTED, 1)
    assert worse.ref.tarball.read_bytes() == first.read_bytes()  # fetched back from S3
    (again,) = promote([_ref(second, BAD)], registry, aws_settings, tmp_path / "w")
    assert again.candidate.version == 2 and len(registry.versions("eurusd")) == 2  # found, not added
    assert registry.set_status("eurusd", 2, APPROVED, "reviewed").status == APPROVED
    assert registry.approved("eurusd").version == 2


def test_the_model_package_request_matches_sagemakers_model(tmp_path, aws_settings, moto_server, monkeypatch):
    """moto stores whatever it is sent; the Stubber validates the request against the service model."""
    import bqx.registry.sagemaker as backend

    (only,) = _models(tmp_path, 1)
    registry = backend.SageMakerRegistry(aws_settings)
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    seen = []
    with Stubber(sm) as stub:
        stub.add_client_error("describe_model_package_group", "ValidationException", "not found")
        stub.add_response("create_model_package_group", {"ModelPackageGroupArn": "arn:aws:sagemaker:us-east-1:1:"
                                                         "model-package-group/bqx-ml-eurusd"})
        stub.add_response("create_model_package", {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:1:model-package/"
                                                   "bqx-ml-eurusd/1"})
        monkeypatch.setattr(registry, "sm", sm)
        monkeypatch.setattr(registry, "versions", lambda pair: [])
        monkeypatch.setattr(registry, "_version", lambda desc: seen.append(desc) or "registered")
        sm.describe_model_package = lambda **kw: {"ModelPackageName": kw["ModelPackageName"]}
        version, new = registry.register(_ref(only, GOOD), decide(GOOD, RegistrySettings()))
        stub.assert_no_pending_responses()
    assert new and version == "registered"  # the three calls were made, each with parameters the model accepts


def test_deploy_stage_serves_only_approved_versions_on_the_endpoint(tmp_path, aws_settings, moto_server):
    first, second = _models(tmp_path)
    settings = dataclasses.replace(aws_settings, registry=RegistrySettings())
    one = deploy.run([_ref(first, GOOD)], "sagemaker", settings, tmp_path / "repo1")
    assert one.endpoint is not None and sorted(one.endpoint.manifest["models"]) == ["eurusd"]
    two = deploy.run([_ref(second, BAD)], "sagemaker", settings, tmp_path / "repo2")
    served = two.endpoint.manifest["models"]["eurusd"]
    assert served["target_model"] == one.endpoint.manifest["models"]["eurusd"]["target_model"]  # v1 still serves
    assert two.endpoint.created == [] and two.endpoint.uploaded == [] and served["registry_version"] == 1
    assert "| eurusd | v2 Rejected | v1 | eurusd v1 kept: eurusd v2 is Rejected" in deploy_markdown(two)
