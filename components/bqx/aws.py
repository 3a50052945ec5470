"""Every boto3 client is built here, with an optional endpoint override so tests (and LocalStack-style
setups) can point all AWS calls at a stand-in such as moto_server on 127.0.0.1."""

from __future__ import annotations

import os
from typing import Any

from bqx.config import Settings

ENDPOINT_ENV = ("BQX_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL")


def endpoint_url() -> str | None:
    for var in ENDPOINT_ENV:
        if os.environ.get(var):
            return os.environ[var]
    return None


def client(service: str, settings: Settings) -> Any:  # noqa: ANN401 (boto3 clients are dynamically typed)
    import boto3
    from botocore.config import Config

    return boto3.client(service, region_name=settings.aws.region, endpoint_url=endpoint_url(),
                        config=Config(retries={"max_attempts": 5, "mode": "standard"}))


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def require(settings: Settings, *names: str) -> None:
    missing = [n for n in names if not getattr(settings.aws, n)]
    if missing:
        raise ValueError(f"the sagemaker backend needs aws settings: {', '.join('aws.' + n for n in missing)} "
                         "(set them in the settings JSON)")


def tags(config: Settings, **own: str) -> list[dict[str, str]]:
    """The settings' tags (``aws.tags``) and bqx's own (``bqx:pair`` ...), as the Tags list AWS APIs take."""
    merged = {**dict(config.aws.tags), **{f"bqx:{k}": v for k, v in own.items()}}
    return [{"Key": k, "Value": v} for k, v in sorted(merged.items())]
