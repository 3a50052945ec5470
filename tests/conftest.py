"""Shared fixtures: small seeded samples and settings sized for fast tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bqx.config import Settings
from bqx.sample import generate


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the declared feature kernels once, on both cores, before any test needs them (on a
    machine with numba's cache warm this only loads them); tests then load instead of compiling."""
    import os

    from bqx.features.registry import compile_declared

    for _ in compile_declared(Settings(), workers=min(2, os.cpu_count() or 1)):
        pass


@pytest.fixture(scope="session")
def bars_2d() -> dict[str, pd.DataFrame]:
    """Two trading days of three pairs (2,880 bars each)."""
    return generate(("eurusd", "usdjpy", "eurjpy"), days=2, seed=7)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture()
def sample_dir(tmp_path: Path) -> Path:
    from bqx.sample import write_sample

    write_sample(tmp_path / "bars", ("eurusd", "gbpusd"), days=1, seed=3)
    return tmp_path / "bars"


@pytest.fixture(scope="session")
def moto_server():
    """A real moto_server on 127.0.0.1 (a free port), as the AWS stand-in; stopped at the end."""
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.2)
    env = {"BQX_AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield url
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture()
def aws_settings(moto_server) -> Settings:
    """Settings for the sagemaker backends against moto, on a moto emptied first (jobs, endpoints and
    buckets of earlier tests must not leak in: tests do not depend on their order), with a fresh bucket."""
    import urllib.request
    import uuid

    import boto3

    urllib.request.urlopen(urllib.request.Request(moto_server + "/moto-api/reset", method="POST"), timeout=10)
    bucket = f"bqx-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    from bqx.config import AwsSettings

    return Settings(aws=AwsSettings(bucket=bucket, role_arn="arn:aws:iam::123456789012:role/bqx-sagemaker",
                                    train_image="123456789012.dkr.ecr.us-east-1.amazonaws.com/bqx-train:0.1.0",
                                    serve_image="123456789012.dkr.ecr.us-east-1.amazonaws.com/bqx-serve:0.1.0",
                                    poll_s=0.01, endpoint_name=f"bqx-fx-{bucket[-6:]}"))
