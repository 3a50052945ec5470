"""The ack backends: ACK SageMaker custom resources, validated against the controller's real CRD schemas,
created and watched through the official Kubernetes client against a Kubernetes API stand-in on 127.0.0.1
(tests/k8s_standin.py), with S3 on moto_server.

The stand-in reconciles nothing: each test plays the ACK controller (and SageMaker behind it) with a
function that writes the status the controller would write; for training it runs the real training
entrypoint on the channels in S3 and stores the model where SageMaker puts it.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import boto3
import pytest
import yaml
from k8s_standin import KubeStandin, conditions, crd_folder
from test_training import FEATURES, HP, _channels

from bqx.ack.kube import AckError, connect
from bqx.ack.resources import (
    RUN_LABEL,
    ack_field,
    ack_spec,
    endpoint_objects,
    k8s_name,
    label_value,
    training_job,
    tuning_job,
)
from bqx.ack.schema import load, problems
from bqx.ack.train import train_ack
from bqx.aws import split_s3
from bqx.config import AwsSettings, Settings
from bqx.endpoint import DeployFailed, ModelRef
from bqx.model_package import load_tarball
from bqx.train.local import TrainingFailed, train_local


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict]:
    return load(crd_folder())


@pytest.fixture()
def standin(schemas):
    s = KubeStandin(schemas)
    yield s
    s.close()


@pytest.fixture()
def ack_settings(aws_settings, standin, tmp_path) -> Settings:
    aws = dataclasses.replace(aws_settings.aws, ack_kubeconfig=str(standin.kubeconfig(tmp_path / "kubeconfig")))
    return dataclasses.replace(aws_settings, aws=aws)


def _everything_on(settings: Settings) -> Settings:
    """Every optional part of the requests switched on, so the schemas see every field bqx can send."""
    aws = dataclasses.replace(settings.aws, spot=True, max_wait_s=7200, vpc_subnets=("subnet-1",),
                              vpc_security_groups=("sg-1",), kms_key_id="arn:aws:kms:us-east-1:1:key/k",
                              tags=(("team", "fx"),), rollback_alarms=("bqx-5xx",),
                              data_capture_s3_uri="s3://b/capture", data_capture_percent=20)
    return dataclasses.replace(settings, aws=aws)


def test_sagemaker_names_become_the_crd_field_names():
    # names as the controller's CRDs spell them (see shared/ack-sagemaker-crds)
    assert ack_field("Type") == "type_"  # a Go keyword: the controller's generator renames it
    assert [ack_field(n) for n in ("RoleArn", "S3Uri", "KmsKeyId", "VolumeKmsKeyId", "SecurityGroupIds",
                                   "ModelDataUrl", "VolumeSizeInGB", "S3OutputPath", "DestinationS3Uri")] == [
        "roleARN", "s3URI", "kmsKeyID", "volumeKMSKeyID", "securityGroupIDs", "modelDataURL", "volumeSizeInGB",
        "s3OutputPath", "destinationS3URI"]
    spec = ack_spec({"HyperParameters": {"learning_rate": "0.1"}, "Tags": [{"Key": "a", "Value": "b"}]})
    assert spec == {"hyperParameters": {"learning_rate": "0.1"}, "tags": [{"key": "a", "value": "b"}]}
    assert k8s_name("bqx-eurusd-0123456789ab") == "bqx-eurusd-0123456789ab"
    odd = k8s_name("BQX_fx.Prod")
    assert odd.startswith("bqx-fx-prod-") and len(odd) <= 63 and odd != k8s_name("bqx-fx-prod")
    assert label_value("bqx-train-" + "x" * 80).endswith("x") and len(label_value("a" * 80)) == 63


def test_every_object_validates_against_the_controllers_crds(aws_settings, schemas):
    settings = _everything_on(aws_settings)
    uris = {"train": "s3://b/p/train/", "validation": "s3://b/p/validation/"}
    hp = {**HP, "l2_leaf_reg": "3.0", "loss_function": "RMSE", "early_stopping_rounds": "50"}
    tuned = settings.replace(training=dataclasses.replace(settings.training, tune_trials=8))
    objects = [training_job("bqx-eurusd-0123456789ab", uris, HP, settings, "eurusd", "bqx-train-x7k2p"),
               *endpoint_objects(settings, "bqx-train-x7k2p"),
               tuning_job("bqx-eurusd-0123456789ab", uris, hp, tuned, "eurusd", "bqx-train-x7k2p")]
    assert [o["kind"] for o in objects] == ["TrainingJob", "Model", "EndpointConfig", "Endpoint",
                                            "HyperParameterTuningJob"]
    for obj in objects:
        assert problems(obj, schemas) == [], obj["kind"]
        assert obj["metadata"]["labels"][RUN_LABEL] == "bqx-train-x7k2p"
    job = objects[0]["spec"]
    assert job["roleARN"] == settings.aws.role_arn and job["enableManagedSpotTraining"] is True
    assert job["checkpointConfig"]["s3URI"].endswith("/checkpoints/bqx-eurusd-0123456789ab/")
    assert job["resourceConfig"]["volumeKMSKeyID"] == settings.aws.kms_key_id
    assert job["vpcConfig"] == {"securityGroupIDs": ["sg-1"], "subnets": ["subnet-1"]}
    assert job["hyperParameters"] == HP
    assert objects[0]["metadata"]["labels"]["bqx.ml/pair"] == "eurusd"
    config = objects[2]["spec"]
    assert config["dataCaptureConfig"]["destinationS3URI"] == "s3://b/capture"
    assert objects[3]["spec"]["deploymentConfig"]["autoRollbackConfiguration"]["alarms"] == [{"alarmName": "bqx-5xx"}]
    search = objects[4]["spec"]["hyperParameterTuningJobConfig"]
    assert search["strategy"] == "Bayesian" and search["resourceLimits"]["maxNumberOfTrainingJobs"] == 8
    assert [r["name"] for r in search["parameterRanges"]["continuousParameterRanges"]] == ["learning_rate",
                                                                                          "l2_leaf_reg"]
    assert "depth" not in objects[4]["spec"]["trainingJobDefinition"]["staticHyperParameters"]
    # the validation is strict: a misspelt field is caught, not pruned away as a lax API server would
    bad = json.loads(json.dumps(objects[0]))
    bad["spec"]["resourceConfig"]["volumeSizeInGb"] = 30
    assert any("volumeSizeInGb" in p for p in problems(bad, schemas))


def _controller_trains(s3):
    """The ACK controller and SageMaker for TrainingJobs: InProgress on the first read, then the real
    entrypoint runs on the S3 channels and the model lands under the output path: Completed."""
    reads: dict[str, int] = {}

    def step(obj):
        spec, name = obj["spec"], obj["spec"]["trainingJobName"]
        reads[name] = reads.get(name, 0) + 1
        if obj.get("status", {}).get("trainingJobStatus") in ("Completed", "Failed"):
            return
        if reads[name] == 1:
            obj["status"] = {"trainingJobStatus": "InProgress", "secondaryStatus": "Training",
                             "conditions": conditions(synced=False)}
            return
        with tempfile.TemporaryDirectory() as tmp:
            channels = {}
            for ch in spec["inputDataConfig"]:
                bucket, prefix = split_s3(ch["dataSource"]["s3DataSource"]["s3URI"])
                folder = Path(tmp) / ch["channelName"]
                folder.mkdir()
                for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
                    s3.download_file(bucket, item["Key"], str(folder / Path(item["Key"]).name))
                channels[ch["channelName"]] = folder
            train_local(channels, spec["hyperParameters"], Path(tmp) / "model.tar.gz")
            bucket, key = split_s3(spec["outputDataConfig"]["s3OutputPath"])
            s3.upload_file(str(Path(tmp) / "model.tar.gz"), bucket, f"{key}{name}/output/model.tar.gz")
        obj["status"] = {"trainingJobStatus": "Completed", "secondaryStatus": "Completed",
                         "modelArtifacts": {"s3ModelArtifacts": f"{spec['outputDataConfig']['s3OutputPath']}{name}"
                                                                "/output/model.tar.gz"},
                         "conditions": conditions(synced=True)}

    return step


def test_training_job_resource_trains_labels_and_is_found_again(tmp_path, ack_settings, standin, moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    standin.controllers["TrainingJob"] = _controller_trains(s3)
    channels = _channels(tmp_path / "ch")
    sleeps: list[float] = []
    meta = train_ack(channels, HP, tmp_path / "out" / "model.tar.gz", ack_settings, "eurusd", "bqx-train-x7k2p",
                     sleep=sleeps.append)
    (job,) = standin.of_kind("TrainingJob")
    assert meta["training_job"] == job["spec"]["trainingJobName"] and job["metadata"]["namespace"] == "ml"
    assert meta["ack_resource"] == f"ml/trainingjobs/{job['metadata']['name']}"
    assert job["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "bqx-ml",
                                         "app.kubernetes.io/part-of": "bqx-ml",
                                         "bqx.ml/run": "bqx-train-x7k2p", "bqx.ml/pair": "eurusd"}
    assert load_tarball(tmp_path / "out" / "model.tar.gz").features == FEATURES and meta["catalog_version"] == "c0ffee"
    assert len(sleeps) == 1  # InProgress once, then Completed
    posts = [r for r in standin.requests if r[0] == "POST"]
    assert len(posts) == 1

    # the same inputs again: the resource is found, nothing is created or uploaded twice
    keys = s3.list_objects_v2(Bucket=ack_settings.aws.bucket)["KeyCount"]
    again = train_ack(channels, HP, tmp_path / "again" / "model.tar.gz", ack_settings, "eurusd", "bqx-train-next")
    assert again["training_job"] == meta["training_job"]
    assert (tmp_path / "again" / "model.tar.gz").read_bytes() == (tmp_path / "out" / "model.tar.gz").read_bytes()
    assert [r for r in standin.requests if r[0] == "POST"] == posts
    assert s3.list_objects_v2(Bucket=ack_settings.aws.bucket)["KeyCount"] == keys

    # aws.ack_keep false: the resource goes once the model is fetched (the job stays in SageMaker)
    drop = dataclasses.replace(ack_settings, aws=dataclasses.replace(ack_settings.aws, ack_keep=False))
    train_ack(channels, HP, tmp_path / "third" / "model.tar.gz", drop, "eurusd")
    assert standin.of_kind("TrainingJob") == []


def test_a_failed_job_names_sagemakers_reason_and_is_retried_under_the_next_name(tmp_path, ack_settings, standin,
                                                                                 moto_server):
    reason = "AlgorithmError: ValueError: unknown hyperparameter 'depht'"

    def fails(obj):
        obj["status"] = {"trainingJobStatus": "Failed", "failureReason": reason, "conditions": conditions(True)}

    standin.controllers["TrainingJob"] = fails
    channels = _channels(tmp_path / "ch")
    with pytest.raises(TrainingFailed, match=r"training job bqx-eurusd-[0-9a-f]{12} failed: AlgorithmError"):
        train_ack(channels, HP, tmp_path / "m.tar.gz", ack_settings, "eurusd")
    with pytest.raises(TrainingFailed, match=r"-a2 failed: AlgorithmError"):  # a rerun tries the next name
        train_ack(channels, HP, tmp_path / "m.tar.gz", ack_settings, "eurusd")
    assert len(standin.of_kind("TrainingJob")) == 2
    one = dataclasses.replace(ack_settings, aws=dataclasses.replace(ack_settings.aws, max_attempts=2))
    with pytest.raises(TrainingFailed, match=r"failed 2 times \(aws.max_attempts\); the last, .*-a2: AlgorithmError"):
        train_ack(channels, HP, tmp_path / "m.tar.gz", one, "eurusd")
    assert not (tmp_path / "m.tar.gz").exists()


def test_terminal_condition_and_timeout_say_what_the_controller_reported(tmp_path, ack_settings, standin,
                                                                         moto_server):
    channels = _channels(tmp_path / "ch")
    standin.controllers["TrainingJob"] = lambda obj: obj.update(status={"conditions": conditions(
        False, terminal="ValidationException: Could not assume role arn:aws:iam::123456789012:role/bqx-sagemaker")})
    with pytest.raises(TrainingFailed, match=r"gave up \(ACK.Terminal\): ValidationException: Could not assume role"):
        train_ack(channels, HP, tmp_path / "m.tar.gz", ack_settings, "eurusd")

    standin.objects.clear()
    standin.controllers["TrainingJob"] = lambda obj: obj.update(status={"conditions": conditions(
        False, recoverable="AccessDeniedException: not authorized to perform sagemaker:CreateTrainingJob")})
    quick = dataclasses.replace(ack_settings, aws=dataclasses.replace(ack_settings.aws, wait_timeout_s=0.05))
    with pytest.raises(TrainingFailed, match=r"not ready after 0 s \(aws.wait_timeout_s\).*recoverable error: "
                                             r"AccessDeniedException"):
        train_ack(channels, HP, tmp_path / "m.tar.gz", quick, "eurusd")

    standin.objects.clear()
    standin.controllers.clear()  # no controller at all: the message says so
    with pytest.raises(TrainingFailed, match="is the ACK SageMaker controller running"):
        train_ack(channels, HP, tmp_path / "m.tar.gz", quick, "eurusd")


def test_the_api_server_refusals_are_one_line(ack_settings, standin, tmp_path):
    kube = connect(ack_settings)
    obj = training_job("bqx-eurusd-0123456789ab", {"train": "s3://b/t/"}, HP, ack_settings, "eurusd", "r")
    obj["spec"]["resourceConfig"]["gpus"] = 1
    with pytest.raises(AckError, match=r"create TrainingJob/bqx-eurusd-0123456789ab in namespace ml: 422 .*"
                                       r"spec.resourceConfig: Additional properties are not allowed \('gpus'"):
        kube.create(obj)
    del obj["spec"]["resourceConfig"]["gpus"]
    kube.create(obj)
    with pytest.raises(AckError, match="409 .*already exists"):
        kube.create(obj)
    nowhere = dataclasses.replace(ack_settings, aws=dataclasses.replace(
        ack_settings.aws, ack_kubeconfig=str(tmp_path / "missing-kubeconfig")))
    with pytest.raises(AckError, match="no Kubernetes configuration for the ack backend"):
        connect(nowhere)


def _models(tmp_path):
    train_local(_channels(tmp_path / "ch"), HP, tmp_path / "m" / "model.tar.gz")
    return [ModelRef(p, tmp_path / "m" / "model.tar.gz", {"catalog_version": "c0ffee", "n_features": 3})
            for p in ("eurusd", "usdjpy")]


def _controller_serves(log: list[str]):
    """The controller for the endpoint's resources: Model and EndpointConfig are synced at once; the
    Endpoint is Creating, then InService; after a spec change the first read still shows the old
    InService status (the controller has not looked yet), then Updating, then InService."""
    seen: dict[str, int] = {}

    def synced(obj):
        obj["status"] = {"ackResourceMetadata": {"ownerAccountID": "123456789012", "region": "us-east-1"},
                         "conditions": conditions(True)}

    def endpoint(obj):
        generation = obj["metadata"]["generation"]
        key = f"{generation}"
        seen[key] = seen.get(key, 0) + 1
        n = seen[key]
        if generation == 1:
            phase, ok = ("Creating", False) if n == 1 else ("InService", True)
        else:
            phase, ok = [("InService", True), ("Updating", False), ("InService", True)][min(n, 3) - 1]
        log.append(f"{generation}:{phase}")
        obj["status"] = {"endpointStatus": phase, "conditions": conditions(ok)}

    return {"Model": synced, "EndpointConfig": synced, "Endpoint": endpoint}


def test_deploy_creates_the_endpoint_resources_then_updates_in_place(tmp_path, ack_settings, standin):
    from bqx.ack.deploy import deploy_ack

    log: list[str] = []
    standin.controllers.update(_controller_serves(log))
    models = _models(tmp_path)
    first = deploy_ack(models, ack_settings, "bqx-train-1", sleep=lambda s: None)
    name = ack_settings.aws.endpoint_name
    assert [c.split("/")[0] for c in first.created] == ["model", "endpoint-config", "endpoint"]
    assert len(first.uploaded) == 2 and first.updated == [] and first.deleted == []
    (endpoint,) = standin.of_kind("Endpoint")
    assert endpoint["spec"]["endpointConfigName"] == first.endpoint_config == standin.of_kind(
        "EndpointConfig")[0]["spec"]["endpointConfigName"]
    (model,) = standin.of_kind("Model")
    assert model["spec"]["primaryContainer"] == {"image": ack_settings.aws.serve_image, "mode": "MultiModel",
                                                 "modelDataURL": f"s3://{ack_settings.aws.bucket}/bqx-ml/models/"}
    assert log == ["1:Creating", "1:InService"]

    # unchanged: nothing is created or patched
    writes = [r for r in standin.requests if r[0] in ("POST", "PATCH", "DELETE")]
    again = deploy_ack(models, ack_settings, "bqx-train-2", sleep=lambda s: None)
    assert again.created == again.updated == again.uploaded == [] and again.endpoint_config == first.endpoint_config
    assert [r for r in standin.requests if r[0] in ("POST", "PATCH", "DELETE")] == writes

    # two instances: a new EndpointConfig, the Endpoint patched (JSON merge patch) and waited through
    # the controller's stale first answer; with ack_keep false the old config goes
    bigger = dataclasses.replace(ack_settings, aws=dataclasses.replace(ack_settings.aws, endpoint_instance_count=2,
                                                                       ack_keep=False))
    log.clear()
    third = deploy_ack(models, bigger, "bqx-train-3", sleep=lambda s: None)
    assert third.created == [f"endpoint-config/{third.endpoint_config}"] and third.updated == [f"endpoint/{name}"]
    assert third.deleted == [f"endpoint-config/{first.endpoint_config}"]
    # the read before the patch, then the stale answer that was not taken for the result
    assert log == ["1:InService", "2:InService", "2:Updating", "2:InService"]
    assert [r[2] for r in standin.requests if r[0] == "PATCH"] == ["application/merge-patch+json"]
    (endpoint,) = standin.of_kind("Endpoint")
    assert endpoint["spec"]["endpointConfigName"] == third.endpoint_config
    assert [c["spec"]["endpointConfigName"] for c in standin.of_kind("EndpointConfig")] == [third.endpoint_config]


def test_deploy_fails_with_the_endpoints_reason(tmp_path, ack_settings, standin):
    from bqx.ack.deploy import deploy_ack

    standin.controllers.update(_controller_serves([]))
    standin.controllers["Endpoint"] = lambda obj: obj.update(status={
        "endpointStatus": "Failed", "failureReason": "The primary container for production variant AllTraffic did "
                                                     "not pass the ping health check.",
        "conditions": conditions(True)})
    with pytest.raises(DeployFailed, match=r"endpoint bqx-fx-\w+ is Failed: The primary container .* ping health"):
        deploy_ack(_models(tmp_path), ack_settings, sleep=lambda s: None)


def test_ack_manifests_cli_writes_valid_objects(tmp_path, aws_settings, schemas, capsys):
    from bqx.cli import main

    (tmp_path / "settings.json").write_text(json.dumps({"aws": {
        k: getattr(aws_settings.aws, k) for k in ("bucket", "role_arn", "train_image", "serve_image")}}))
    channels = _channels(tmp_path / "ds")
    assert main(["ack-manifests", "--pair", "eurusd", "--out", str(tmp_path / "out"), "--settings",
                 str(tmp_path / "settings.json"), "--dataset", str(channels["train"]), "--run", "review",
                 "--crds", str(crd_folder())]) == 0
    files = sorted((tmp_path / "out").iterdir())
    kinds = [f.name.split("-")[0] for f in files]
    assert sorted(kinds) == ["endpoint", "endpointconfig", "model", "trainingjob"]
    for f in files:
        obj = yaml.safe_load(f.read_text())
        assert problems(obj, schemas) == [] and obj["metadata"]["labels"][RUN_LABEL] == "review"
    capsys.readouterr()
    assert main(["ack-manifests", "--pair", "eurxyz", "--out", str(tmp_path / "x"), "--settings",
                 str(tmp_path / "settings.json")]) != 0
    assert "bqx ack-manifests: error: unknown pair 'eurxyz'" in capsys.readouterr().err
    assert main(["ack-manifests", "--pair", "eurusd", "--out", str(tmp_path / "x")]) != 0
    assert "aws.bucket, aws.role_arn, aws.train_image, aws.serve_image" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_rbac_lets_the_pipeline_do_what_the_ack_backends_do():
    import kubernetes_validate

    from bqx.ack.resources import GROUP, KINDS

    root = Path(__file__).resolve().parents[1]
    docs = [d for d in yaml.safe_load_all((root / "manifests" / "base" / "rbac.yaml").read_text()) if d]
    for d in docs:
        kubernetes_validate.validate(d, "1.30.0", strict=True)
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "bqx-sagemaker"]
    rules = [r for r in role["rules"] if r["apiGroups"] == [GROUP]]
    granted = {(res, verb) for r in rules for res in r["resources"] for verb in r["verbs"]}
    needed = {(plural, verb) for plural, _ in KINDS.values() for verb in ("get", "list", "create", "patch", "delete")}
    assert needed <= granted
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == "bqx-sagemaker"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "bqx-pipelines"}]


def test_settings_for_the_ack_backend_are_checked():
    with pytest.raises(ValueError, match="aws.ack_keep"):
        AwsSettings(ack_keep="no")  # type: ignore[arg-type]


def test_tuning_job_resource_gives_the_best_trial(tmp_path, ack_settings, standin, moto_server):
    from test_tune import _dataset

    from bqx.tune import run

    best = {"depth": "7", "learning_rate": "0.041", "l2_leaf_reg": "4.2", "iterations": "650"}

    def controller(obj):  # InProgress, then Completed with the best training job
        if obj.get("status", {}).get("hyperParameterTuningJobStatus") == "InProgress":
            obj["status"] = {"hyperParameterTuningJobStatus": "Completed", "conditions": conditions(True),
                             "bestTrainingJob": {"trainingJobName": "bqx-eurusd-x-004-abc", "trainingJobStatus":
                                                 "Completed", "tunedHyperParameters": best,
                                                 "finalHyperParameterTuningJobObjectiveMetric": {
                                                     "metricName": "validation:rmse", "value": 0.31}}}
        else:
            obj["status"] = {"hyperParameterTuningJobStatus": "InProgress", "conditions": conditions(False)}

    standin.controllers["HyperParameterTuningJob"] = controller
    settings = ack_settings.replace(training=dataclasses.replace(ack_settings.training, tune_trials=6))
    summary = run(_dataset(tmp_path / "ds"), settings, "ack", "bqx-train-t1")
    assert summary.best == {"depth": 7, "learning_rate": 0.041, "l2_leaf_reg": 4.2, "iterations": 650}
    assert [(t.state, t.value) for t in summary.trials] == [("completed", 0.31)]
    (job,) = standin.of_kind("HyperParameterTuningJob")
    assert job["metadata"]["labels"]["bqx.ml/run"] == "bqx-train-t1"
    assert job["spec"]["hyperParameterTuningJobConfig"]["resourceLimits"]["maxParallelTrainingJobs"] == 2
    standin.controllers["HyperParameterTuningJob"] = lambda obj: obj.update(status={
        "hyperParameterTuningJobStatus": "Failed", "failureReason": "No training job succeeded",
        "conditions": conditions(True)})
    standin.objects.clear()
    with pytest.raises(TrainingFailed, match="tuning job bqx-eurusd-[0-9a-f]{12} failed: No training job succeeded"):
        run(_dataset(tmp_path / "ds2"), settings, "ack")

