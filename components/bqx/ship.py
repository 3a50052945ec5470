"""Shipping: build and push the stage images with one tag (``bqx images``), and submit a run to a
Kubeflow Pipelines server (``bqx submit``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bqx.images import IMAGES, image


@dataclass(frozen=True)
class ImageBuild:
    stage: str
    dockerfile: Path
    ref: str
    buildargs: dict[str, str]


def image_plan(root: Path, registry: str, tag: str) -> list[ImageBuild]:
    """The base image first, then every stage image built on it, all with one tag."""
    base = f"{registry}/bqx-base:{tag}"
    plan = [ImageBuild("base", root / "images" / "base" / "Dockerfile", base, {})]
    for stage in IMAGES:
        plan.append(ImageBuild(stage, root / "images" / stage / "Dockerfile", image(stage, registry, tag),
                               {"BASE_IMAGE": base}))
    missing = [str(b.dockerfile) for b in plan if not b.dockerfile.exists()]
    if missing:
        raise FileNotFoundError(f"no Dockerfile for {', '.join(missing)}")
    return plan


def build_and_push(root: Path, registry: str, tag: str, push: bool = True) -> list[str]:
    """Build (and push) every image with the docker SDK; returns the image references."""
    import docker

    engine = docker.from_env()
    refs = []
    for b in image_plan(root, registry, tag):
        print(f"building {b.ref}", flush=True)
        engine.images.build(path=str(root), dockerfile=str(b.dockerfile.relative_to(root)), tag=b.ref,
                            buildargs=b.buildargs, rm=True)
        if push:
            repo, _, t = b.ref.rpartition(":")
            for line in engine.images.push(repo, tag=t, stream=True, decode=True):
                if "error" in line:
                    raise RuntimeError(f"push of {b.ref} failed: {line['error']}")
        refs.append(b.ref)
    return refs


def submit(host: str, package: Path, pipeline_name: str, version_name: str, experiment: str, run_name: str,
           params: dict) -> str:
    """Upload the compiled package as a new version of the pipeline (creating the pipeline if needed) and
    start a run of it; returns the run id."""
    import kfp

    client = kfp.Client(host=host)
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(package), pipeline_name=pipeline_name).pipeline_id
    version = client.upload_pipeline_version(str(package), pipeline_version_name=version_name,
                                             pipeline_id=pipeline_id)
    exp = client.create_experiment(experiment)
    run = client.run_pipeline(experiment_id=exp.experiment_id, job_name=run_name, pipeline_id=pipeline_id,
                              version_id=version.pipeline_version_id, params=params)
    return str(run.run_id)
