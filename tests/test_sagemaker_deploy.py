"""Deploying to a SageMaker multi-model endpoint against a real moto_server on 127.0.0.1.

moto implements S3, CreateModel, CreateEndpointConfig, CreateEndpoint and Application Auto Scaling,
but answers UpdateEndpoint with a 500, so the blue/green update is checked with botocore's Stubber
for its exact call shape, and the decision that leads to it is a pure function tested directly.
"""

import dataclasses

import boto3
from test_training import HP, _channels

from bqx.deploy import ModelRef, deploy_sagemaker, endpoint_action
from bqx.training.local import train_local


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
    assert len(first["uploaded"]) == 2 and not first["updated"]
    assert [c.split("/")[0] for c in first["created"]] == ["model", "endpoint-config", "endpoint", "scaling"]
    model = sm.describe_model(ModelName=first["model"])
    assert model["PrimaryContainer"]["Mode"] == "MultiModel"
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{aws_settings.aws.bucket}/bqx-ml/models/"
    config = sm.describe_endpoint_config(EndpointConfigName=first["endpoint_config"])
    variant = config["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    name = aws_settings.aws.endpoint_name
    assert sm.describe_endpoint(EndpointName=name)["EndpointConfigName"] == first["endpoint_config"]
    resource = f"endpoint/{name}/variant/AllTraffic"
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=aws_settings.aws.bucket)["Contents"]}
    names = {e["target_model"] for e in first["manifest"]["models"].values()}
    assert {f"bqx-ml/models/{n}" for n in names} | {"bqx-ml/models/manifest.json"} <= keys

    again = deploy_sagemaker(_models(tmp_path), aws_settings)  # same models: nothing changes
    assert again["uploaded"] == [] and again["created"] == [] and again["updated"] == []
    assert again["endpoint_config"] == first["endpoint_config"]

    wider = dataclasses.replace(aws_settings, aws=dataclasses.replace(aws_settings.aws, autoscale_max=4))
    changed = deploy_sagemaker(_models(tmp_path), wider)
    assert changed["updated"] == ["scaling/target"]
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"][0]
    assert target["MaxCapacity"] == 4


def test_new_instance_type_updates_the_existing_endpoint_blue_green(tmp_path, aws_settings, monkeypatch):
    """moto answers UpdateEndpoint with a 500: record that one call instead, validated against botocore's
    model of the real API, and let every other call reach moto."""
    from botocore.validate import validate_parameters

    import bqx.aws

    assert endpoint_action(None, "c2") == "create"
    assert endpoint_action("c1", "c1") == "none"
    assert endpoint_action("c1", "c2") == "update"
    deploy_sagemaker(_models(tmp_path), aws_settings)  # creates the endpoint on its first config
    bigger = dataclasses.replace(aws_settings, aws=dataclasses.replace(aws_settings.aws,
                                                                       endpoint_instance_type="ml.c5.xlarge"))
    real_client = bqx.aws.client
    calls = []

    def client(service, settings):
        c = real_client(service, settings)
        if service == "sagemaker":
            shape = c.meta.service_model.operation_model("UpdateEndpoint").input_shape

            def update_endpoint(**kwargs):
                validate_parameters(kwargs, shape)  # raises on a malformed request
                calls.append(kwargs)
                return {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/bqx-fx"}

            c.update_endpoint = update_endpoint
        return c

    monkeypatch.setattr(bqx.aws, "client", client)
    result = deploy_sagemaker(_models(tmp_path), bigger)
    name = aws_settings.aws.endpoint_name
    assert result["updated"] == [f"endpoint/{name}"]
    assert calls == [{"EndpointName": name, "EndpointConfigName": result["endpoint_config"]}]
    assert result["created"] == [f"endpoint-config/{result['endpoint_config']}"]
