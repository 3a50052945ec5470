"""The container checks run against images `tests/containers/run.sh` built (BQX_IMAGE_REGISTRY and
BQX_IMAGE_TAG name them) through the Docker Engine API at DOCKER_HOST; without them they skip, saying so."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Images:
    registry: str
    tag: str

    def ref(self, name: str) -> str:
        return f"{self.registry}/bqx-{name}:{self.tag}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/containers/" in str(item.fspath):
            item.add_marker(pytest.mark.containers)


@pytest.fixture(scope="session")
def images() -> Images:
    tag = os.environ.get("BQX_IMAGE_TAG")
    if not tag:
        pytest.skip("container checks need the built images: run tests/containers/run.sh (it builds them with "
                    "podman and sets BQX_IMAGE_REGISTRY, BQX_IMAGE_TAG and DOCKER_HOST)")
    return Images(os.environ.get("BQX_IMAGE_REGISTRY", "localhost/bqx"), tag)


@pytest.fixture(scope="session")
def engine(images: Images):  # noqa: ANN201
    from bqx.ship import engine as connect

    client = connect()
    missing = [n for n in ("ingest", "train", "serve") if not client.images.list(name=images.ref(n))]
    if missing:
        pytest.fail(f"BQX_IMAGE_TAG={images.tag} is set but {', '.join(images.ref(n) for n in missing)} are not "
                    "built: run tests/containers/run.sh")
    return client
