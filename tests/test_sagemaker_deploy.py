"""Deploying to a SageMaker multi-model endpoint against a real moto_server on 127.0.0.1.

moto implements S3, CreateModel, CreateEndpointConfig, CreateEndpoint and Application Auto Scaling,
but answers UpdateEndpoint with a 500, so the blue/green update is checked with botocore's Stubber
for its exact call shape, and the decision that leads to it is a pure function tested directly.
"""

import dataclasses

import boto3
from test_training import HP, _channels

from bqx.deploy import ModelRef, deploy_sagemaker, endpoint_action
from bqx.train.local import train_local


def _models(tmp_path, n_pairs=2):
    if not (tmp_path / "m" / "model.tar.gz").exists():
        train_local(_channels(tmp_path / "ch"), HP, tmp_path / "m" / "model.tar.gz")
    return [ModelRef(p, tmp_path / "m" / "model.tar.gz", {"catalog_version": "c0ffee", "n_features": 3})
            for p in ("eurusd", "usdjpy")[:n_pairs]]


def test_deploy_creates_mme_resources_once(tmp_path, aws_settings, moto_server):
    kw = {"endpoint_url": moto_server, "region_name": "us-east-1"}
    sm, s3 = boto3.client("sagemaker", **kw), boto3.client("s3", **kw)
    aas = boto3.client("application-autoscaling", **kw)
    first = deploy_sagemaker(_models(tmp_path), aws_settings)
    assert len(first.uploaded) == 2 and not first.updated
    assert [c.split("/")[0] for c in first.created] == ["model", "endpoint-config", "endpoint", "scaling"]
    model = sm.describe_model(ModelName=first.model)
    assert model["PrimaryContainer"]["Mode"] == "MultiModel"
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{aws_settings.aws.bucket}/bqx-ml/models/"
    config = sm.describe_endpoint_config(EndpointConfigName=first.endpoint_config)
    variant = config["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    name = aws_settings.aws.endpoint_name
    assert sm.describe_endpoint(EndpointName=name)["EndpointConfigName"] == first.endpoint_config
    resource = f"endpoint/{name}/variant/AllTraffic"
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=aws_settings.aws.bucket)["Contents"]}
    names = {e["target_model"] for e in first.manifest["models"].values()}
    assert {f"bqx-ml/models/{n}" for n in names} | {"bqx-ml/models/manifest.json"} <= keys

    again = deploy_sagemaker(_models(tmp_path), aws_settings)  # same models: nothing changes
    assert again.uploaded == [] and again.created == [] and again.updated == []
    assert again.endpoint_config == first.endpoint_config

    wider = dataclasses.replace(aws_settings, aws=dataclasses.replace(aws_settings.aws, autoscale_max=4))
    changed = deploy_sagemaker(_models(tmp_path), wider)
    assert changed.updated == ["scaling/target"]
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"][0]
    assert target["MaxCapacity"] == 4


def test_new_instance_type_updates_the_existing_endpoint_blue_green(tmp_path, aws_settings, monkeypatch):
    """moto answers UpdateEndpoint with a 500, so that one call is played here as SageMaker plays it:
    validated against botocore's model of the real API, the endpoint Updating, then InService on the new
    config. Everything else reaches moto, the scalable target included: it must be let go of before an
    update that changes the instance type, and registered again after."""
    from botocore.validate import validate_parameters

    import bqx.aws

    assert endpoint_action(None, "c2") == "create"
    assert endpoint_action("c1", "c1") == "none"
    assert endpoint_action("c1", "c2") == "update"
    deploy_sagemaker(_models(tmp_path), aws_settings, sleep=lambda s: None)  # creates the endpoint
    alarms = ("bqx-fx-5xx", "bqx-fx-latency")
    bigger = dataclasses.replace(aws_settings, aws=dataclasses.replace(
        aws_settings.aws, endpoint_instance_type="ml.c5.xlarge", rollback_alarms=alarms, baking_s=120))
    real_client = bqx.aws.client
    calls, events = [], []

    def client(service, settings):
        c = real_client(service, settings)
        if service == "sagemaker":
            shape = c.meta.service_model.operation_model("UpdateEndpoint").input_shape
            describe = c.describe_endpoint

            def update_endpoint(**kwargs):
                validate_parameters(kwargs, shape)  # raises on a malformed request
                calls.append(kwargs)
                events.append("update")
                return {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/bqx-fx"}

            def describe_endpoint(**kwargs):
                desc = describe(**kwargs)
                if calls:  # SageMaker: Updating first, then in service on the new config
                    events.append("describe")
                    done = events.count("describe") > 1
                    config = calls[-1]["EndpointConfigName"] if done else desc["EndpointConfigName"]
                    desc = {**desc, "EndpointStatus": "InService" if done else "Updating", "EndpointConfigName": config}
                return desc

            c.update_endpoint, c.describe_endpoint = update_endpoint, describe_endpoint
        if service == "application-autoscaling":
            deregister = c.deregister_scalable_target

            def deregister_scalable_target(**kwargs):
                events.append("deregister")
                return deregister(**kwargs)

            c.deregister_scalable_target = deregister_scalable_target
        return c

    monkeypatch.setattr(bqx.aws, "client", client)
    sleeps = []
    result = deploy_sagemaker(_models(tmp_path), bigger, sleep=sleeps.append)
    name = aws_settings.aws.endpoint_name
    assert events[:2] == ["deregister", "update"] and sleeps == [bigger.aws.poll_s]  # waited out one Updating
    assert result.updated == ["scaling/deregistered", f"endpoint/{name}"]
    assert result.created == [f"endpoint-config/{result.endpoint_config}", "scaling/target+policy"]
    (update,) = calls
    assert update["EndpointConfigName"] == result.endpoint_config
    policy = update["DeploymentConfig"]
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE",
                                                                             "WaitIntervalInSeconds": 120}
    assert [a["AlarmName"] for a in policy["AutoRollbackConfiguration"]["Alarms"]] == list(alarms)
    aas = real_client("application-autoscaling", aws_settings)
    resource = f"endpoint/{name}/variant/AllTraffic"
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"]


def _endpoint(status, config="c2", **extra):
    return {"EndpointName": "bqx-fx", "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/bqx-fx",
            "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": "2026-12-02T00:00:00Z",
            "LastModifiedTime": "2026-12-02T00:00:00Z", **extra}


def test_an_endpoint_that_fails_or_rolls_back_is_a_deploy_failure_with_the_reason():
    import pytest
    from botocore.stub import Stubber

    from bqx.deploy import DeployFailed, wait_endpoint

    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    reason = "The primary container for production variant AllTraffic did not pass the ping health check"
    cases = [([_endpoint("Creating"), _endpoint("Failed", FailureReason=reason)],
              "is Failed: The primary container .* did not pass the ping health check"),
             ([_endpoint("Updating"), _endpoint("RollingBack"), _endpoint("InService", config="c1")],
              "in service on c1, not c2: the update was rolled back"),
             ([_endpoint("Updating")] * 3, "still Updating after 20 s")]
    for responses, words in cases:
        with Stubber(sm) as stub:
            for r in responses:
                stub.add_response("describe_endpoint", r, {"EndpointName": "bqx-fx"})
            with pytest.raises(DeployFailed, match=words):
                wait_endpoint(sm, "bqx-fx", "c2", poll_s=10, timeout_s=20, sleep=lambda s: None)
