"""10,000 generated requests against ``bqx serve`` over HTTP on 127.0.0.1: 7,500 payloads and 2,500
model loads (strategies in ``tests/fuzz_requests.py``). Not one may get a 5xx, and the server must be
answering normally afterwards."""

import boto3
import httpx
import pytest
from fuzz_requests import FEATURES, MODEL, PAYLOAD, Case, loads, package_files, problem, send
from hypothesis import HealthCheck, given, settings

from bqx.serving.launch import bqx_serve, free_port, started
from bqx.serving.synthetic import synthetic_model

PAYLOADS, LOADS = 7_500, 2_500
FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck),
                print_blob=True)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, moto_server):
    """The server with one model loaded, a model root for the fuzzed tarballs, S3 on moto."""
    root = tmp_path_factory.mktemp("fuzz-root")
    synthetic_model(root / f"{MODEL}.tar.gz", MODEL, FEATURES, rows=300, iterations=10)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="bqx-fuzz")
    s3.put_object(Bucket="bqx-fuzz", Key="junk.tar.gz", Body=b"\x1f\x8b\x08" + b"\x00" * 64)
    port = free_port()
    with started(bqx_serve(port, "--model-root", str(root)), f"http://127.0.0.1:{port}",
                 {"BQX_AWS_ENDPOINT_URL": moto_server}) as running, \
            httpx.Client(base_url=running.url, timeout=60) as client:
        assert client.post("/models", json={"model_name": MODEL, "url": f"{MODEL}.tar.gz"}).status_code == 200
        yield client, root, package_files(root / f"{MODEL}.tar.gz")
        alive = client.post(f"/models/{MODEL}/invoke", json={"features": {f: 0.1 for f in FEATURES}})
        assert alive.status_code == 200
    assert "500 on" not in running.output()


def test_fuzzed_payloads_never_get_a_5xx(fuzzed):
    client, root, _ = fuzzed

    @settings(FUZZ, max_examples=PAYLOADS)
    @given(case=PAYLOAD)
    def run(case: Case) -> None:
        assert problem(case, send(client, case, root)) is None

    run()


def test_fuzzed_model_loads_never_get_a_5xx(fuzzed):
    client, root, good = fuzzed

    @settings(FUZZ, max_examples=LOADS)
    @given(case=loads(good))
    def run(case: Case) -> None:
        assert problem(case, send(client, case, root)) is None

    run()
    assert sorted(p.name for p in root.iterdir()) == [f"{MODEL}.tar.gz"]  # every fuzzed tarball was removed
