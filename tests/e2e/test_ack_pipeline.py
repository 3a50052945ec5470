"""The whole pipeline through kfp.local with the ack backends: the train and deploy tasks (subprocesses)
create ACK resources through the Kubernetes client on the API stand-in (tests/k8s_standin.py, bodies
validated against the controller's CRDs), S3 on moto_server. This test plays the ACK controller and
SageMaker: the TrainingJob's controller runs the real training entrypoint on the channels in S3."""

import dataclasses
import json

import boto3
import pytest
from k8s_standin import KubeStandin, conditions, crd_folder
from test_ack import _controller_serves, _controller_trains

from bqx.ack.schema import load
from bqx.kubeflow.local_run import run_local
from bqx.sample import write_sample

PAIRS = ["eurusd", "usdjpy"]
pytestmark = pytest.mark.e2e


def test_ack_backends_train_and_serve_through_custom_resources(tmp_path, aws_settings, moto_server):
    standin = KubeStandin(load(crd_folder()))
    try:
        s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
        standin.controllers["TrainingJob"] = _controller_trains(s3)
        standin.controllers.update(_controller_serves([]))
        aws = dataclasses.replace(aws_settings.aws, ack_kubeconfig=str(standin.kubeconfig(tmp_path / "kubeconfig")))
        settings = dataclasses.replace(aws_settings, aws=aws).replace(gate=False)  # plumbing, not the gate
        write_sample(tmp_path / "bars", PAIRS, days=10, seed=42)
        result = run_local(tmp_path / "bars", tmp_path / "out", settings, PAIRS, echo=open(tmp_path / "p.txt", "w"),
                           train_backend="ack", deploy_backend="ack")
        repo = result.find("deploy-models")[0].artifacts["repository"]["metadata"]
        assert repo["failed"] == {} and repo["pairs"] == PAIRS
        jobs = standin.of_kind("TrainingJob")
        assert sorted(j["metadata"]["labels"]["bqx.ml/pair"] for j in jobs) == PAIRS
        assert all(j["status"]["trainingJobStatus"] == "Completed" for j in jobs)
        (endpoint,) = standin.of_kind("Endpoint")
        assert endpoint["spec"]["endpointConfigName"] == repo["endpoint_config"]
        assert endpoint["status"] == {"endpointStatus": "InService", "conditions": conditions(True)}
        manifest = json.loads(s3.get_object(Bucket=aws.bucket, Key="bqx-ml/models/manifest.json")["Body"].read())
        assert sorted(manifest["models"]) == PAIRS
    finally:
        standin.close()
