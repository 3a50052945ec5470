"""Shipping: build (and push) every image with one tag through any Docker-Engine-compatible API
(``bqx images``: Docker, or podman's socket), and submit a run to a Kubeflow Pipelines server
(``bqx submit``)."""

from __future__ import annotations

import collections
import concurrent.futures
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bqx import __version__
from bqx.kubeflow.images import IMAGES, image

DEFAULT_PYTHON_IMAGE = "python:3.11-slim-bookworm"
CONTEXT_FILES = ("pyproject.toml", "README.md", "images/Dockerfile", "images/wheels/Dockerfile",
                 "images/constraints.txt", "images/strip.py")
CA_IN_CONTEXT = ".bqx-build/ca-bundle.crt"  # images/wheels/Dockerfile hands it to pip; no image keeps it


@dataclass(frozen=True)
class ImageBuild:
    name: str  # "wheels" (the wheelhouse, never pushed) or an image of bqx.kubeflow.images.IMAGES
    dockerfile: str  # relative to the build context
    target: str | None
    ref: str
    buildargs: dict[str, str]
    needs: str | None = None  # the image (by name) this build copies from, so it is built first

    @property
    def shipped(self) -> bool:
        return self.name != "wheels"


def image_extras(root: Path, name: str) -> str:
    """What an image installs, as pip extras: the component extras its own extra lists in pyproject.toml
    (``bqx-ml[kfp,features]`` -> "features,kfp"), or its own name when it also lists packages directly."""
    import tomllib

    listed = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"].get(name)
    if listed is None:
        raise ValueError(f"pyproject.toml has no extra for the {name!r} image")
    parts = [re.fullmatch(r"bqx-ml\[([\w,\-]+)\]", r.replace(" ", "")) for r in listed]
    if not all(parts):
        return name
    return ",".join(sorted({e for m in parts if m for e in m.group(1).split(",")}))


def image_plan(root: Path, registry: str, tag: str, python_image: str = DEFAULT_PYTHON_IMAGE) -> list[ImageBuild]:
    """The wheelhouse first, then every image from it, all with one tag: pipeline stages on the ``stage``
    target, ``train`` and ``serve`` on their own. The extract image compiles the declared feature kernels
    and serve copies them from it (KERNELS_IMAGE) instead of compiling them again."""
    wheels = f"{registry}/bqx-wheels:{tag}"
    plan = [ImageBuild("wheels", "images/wheels/Dockerfile", None, wheels, {"PYTHON_IMAGE": python_image})]
    for name in IMAGES:
        args = {"PYTHON_IMAGE": python_image, "WHEELS_IMAGE": wheels, "EXTRAS": image_extras(root, name)}
        needs = None
        if args["EXTRAS"] == image_extras(root, "extract"):  # the image extract shares with panel and lag
            args["FEATURE_KERNELS"] = "1"
        if name == "serve":
            args["KERNELS_IMAGE"], needs = image("extract", registry, tag), "extract"
        plan.append(ImageBuild(name, "images/Dockerfile", name if name in ("train", "serve") else "stage",
                               image(name, registry, tag), args, needs))
    return plan


def build_context(root: Path, into: Path, ca_bundle: str | None = None) -> Path:
    """The files the Dockerfiles copy (package sources, pyproject, the Dockerfiles, pins, each image's
    requirements under .bqx-build/requirements/), plus ``ca_bundle`` as .bqx-build/ca-bundle.crt (empty
    without one): a small context, nothing else sent."""
    for rel in CONTEXT_FILES:
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, into / rel)
    shutil.copytree(root / "components", into / "components",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    (into / CA_IN_CONTEXT).parent.mkdir(parents=True, exist_ok=True)
    if ca_bundle:
        try:
            shutil.copyfile(ca_bundle, into / CA_IN_CONTEXT)
        except OSError as err:
            raise ValueError(f"--ca-bundle {ca_bundle}: {err.strerror}") from None
    else:
        (into / CA_IN_CONTEXT).write_bytes(b"")
    for extras in {image_extras(root, name) for name in IMAGES}:
        path = requirements_file(into, extras)
        path.parent.mkdir(exist_ok=True)
        path.write_text(image_requirements(root, extras))
    return into


def requirements_file(context: Path, extras: str) -> Path:
    """Where the build context holds an image's requirements (images/Dockerfile copies it from there)."""
    return context / ".bqx-build" / "requirements" / f"{extras}.txt"


def engine() -> Any:  # noqa: ANN401 (docker.DockerClient)
    """A Docker-Engine-compatible API client (DOCKER_HOST: Docker, or podman's socket); one line if none answers."""
    try:
        import docker
    except ImportError:
        raise ValueError("building images needs the docker SDK: pip install 'bqx-ml[ship]'") from None
    where = os.environ.get("DOCKER_HOST", "the default socket (unix:///var/run/docker.sock)")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as err:
        raise RuntimeError(f"no container engine answers at {where}: start Docker, or podman's API with `podman "
                           "system service --time=0 unix:///run/podman/podman.sock` and "
                           f"DOCKER_HOST=unix:///run/podman/podman.sock ({str(err).splitlines()[0][:160]})") from None
    return client


@dataclass
class Built:
    ref: str
    seconds: float
    size_bytes: int


def build_images(root: Path, registry: str, tag: str, python_image: str = DEFAULT_PYTHON_IMAGE,
                 ca_bundle: str | None = None, push: bool = False, only: list[str] | None = None,
                 echo: Callable[[str], None] = print, jobs: int = 1) -> list[Built]:
    """Build the wheelhouse, then every image (or ``only`` these) through the engine's API, ``jobs`` builds
    at a time, printing each build step; push the shipped ones once all are built. Returns them in plan
    order. Raises RuntimeError naming the image and the failing step."""
    client = engine()
    full = image_plan(root, registry, tag, python_image)
    wanted = set(only or (b.name for b in full))
    wanted |= {b.needs for b in full if b.name in wanted and b.needs}  # serve copies from extract
    plan = [b for b in full if b.name in wanted or not b.shipped]
    unknown = sorted(set(only or ()) - {b.name for b in plan})
    if unknown:
        raise ValueError(f"no image named {', '.join(unknown)} (images: {', '.join(IMAGES)})")
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: must be at least 1")
    lock = threading.Lock()

    def say(name: str, line: str) -> None:
        with lock:
            echo(line if jobs == 1 else f"{line[:len(line) - len(line.lstrip())]}[{name}] {line.lstrip()}")

    def build_chain(chain: list[ImageBuild], c: Any) -> list[Built]:  # noqa: ANN401
        out = []
        for b in chain:
            say(b.name, f"building {b.ref}" + (f" (target {b.target})" if b.target else ""))
            t0 = time.perf_counter()
            _build(c, context, b, lambda line, n=b.name: say(n, line))
            size = int(c.images.get(b.ref).attrs.get("Size") or 0)
            out.append(Built(b.ref, time.perf_counter() - t0, size))
            say(b.name, f"built {b.ref}: {size / 1e6:,.0f} MB in {out[-1].seconds:.0f} s")
        return out

    built: dict[str, Built] = {}
    with tempfile.TemporaryDirectory(prefix="bqx-build-context-") as tmp:
        context = build_context(root, Path(tmp), ca_bundle)
        first = [b for b in plan if not b.shipped]  # the wheelhouse every image copies from
        for b in build_chain(first, client):
            built[b.ref] = b
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            chains = [pool.submit(build_chain, chain, engine() if jobs > 1 else client)
                      for chain in build_chains(context, [b for b in plan if b.shipped])]
            try:
                for f in concurrent.futures.as_completed(chains):
                    built.update((b.ref, b) for b in f.result())
            except BaseException:
                for f in chains:
                    f.cancel()
                raise
    if push:
        for b in plan:
            if b.shipped:
                _push(client, b.ref, echo)
    return [built[b.ref] for b in plan]


def build_chains(context: Path, plan: list[ImageBuild]) -> list[list[ImageBuild]]:
    """Images that build the same (target, extras) share every layer, so each such group is one chain
    built in order (the first builds, the rest reuse its cache); an image that copies from another
    (serve from extract) goes at the end of that one's chain. The chains are independent and go longest
    first: those that compile the feature kernels, then by how many distributions their images install
    (the requirements files in the build ``context``)."""
    groups: dict[tuple[str | None, str], list[ImageBuild]] = {}
    for b in plan:
        groups.setdefault((b.target, b.buildargs.get("EXTRAS", "")), []).append(b)
    chains = list(groups.values())
    for dependent in [c for c in chains if c[0].needs]:
        host = next((c for c in chains if any(b.name == dependent[0].needs for b in c)), None)
        if host is not None:
            chains.remove(dependent)
            host.extend(dependent)

    def weight(chain: list[ImageBuild]) -> tuple[bool, int]:
        installs = {b.buildargs.get("EXTRAS", "") for b in chain}
        return (any(b.buildargs.get("FEATURE_KERNELS") == "1" for b in chain),
                sum(len(requirements_file(context, e).read_text().splitlines()) for e in installs))

    return sorted(chains, key=weight, reverse=True)


_STEP = re.compile(r"^(\[\d+/\d+\] )?(Step|STEP) \d+")  # Docker: "Step 3/9 :", podman: "[2/4] STEP 3/9:"


def _build(client: Any, context: Path, b: ImageBuild, echo: Callable[[str], None]) -> None:  # noqa: ANN401
    step, tail = "its first step", collections.deque(maxlen=20)
    stream = client.api.build(path=str(context), dockerfile=b.dockerfile, tag=b.ref, target=b.target,
                              buildargs=b.buildargs, rm=True, forcerm=True, pull=False, decode=True)
    for chunk in stream:
        if "error" in chunk or "errorDetail" in chunk:
            for line in tail:  # what the failing step printed last
                echo(f"  | {line}")
            detail = str(chunk.get("error") or chunk.get("errorDetail", {}).get("message", "")).strip()
            cause = next((ln for ln in reversed(tail) if "error" in ln.lower()), detail.splitlines()[-1][-300:])
            raise RuntimeError(f"build of {b.ref} failed at {step[:100]}: {cause}")
        for line in str(chunk.get("stream", "")).splitlines():
            if _STEP.match(line):
                step = line.strip()
                echo(f"  {step[:150]}")
            elif line.strip():
                tail.append(line.rstrip()[:300])


def _push(client: Any, ref: str, echo: Callable[[str], None]) -> None:  # noqa: ANN401
    repo, _, t = ref.rpartition(":")
    for line in client.images.push(repo, tag=t, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push of {ref} failed: {line['error']}")
    echo(f"pushed {ref}")


IMAGE_EXTRAS = IMAGES  # one pyproject extra per image, named after it
CONSTRAINTS_HEADER = """\
# Exact versions baked into the images: the dependency closure of bqx-ml[<every image's extra>] at
# the versions of the environment the test suite ran in. Regenerate with `bqx images
# --write-constraints` whenever pyproject.toml's dependencies change (tests/test_images.py checks it).
"""


# Dependencies a package declares but bqx never reaches through it: catboost's plotting and widget stack
# (288 MB with plotly) is left out of images unless another requirement (reports, evidently) brings it.
UNUSED_THROUGH = {"catboost": frozenset({"plotly", "graphviz", "matplotlib"})}


def dependency_closure(extras: tuple[str, ...] = IMAGE_EXTRAS, prune: bool = False) -> dict[str, str]:
    """Every distribution bqx-ml[extras] needs, with the version installed here (name -> version);
    ``prune`` leaves out what only :data:`UNUSED_THROUGH` brings."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str], str]] = [(f"bqx-ml[{','.join(extras)}]", frozenset(), "")]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        text, parent_extras, parent = todo.pop()
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (parent_extras or {""})):
            continue
        name = canonicalize_name(req.name)
        if prune and name in UNUSED_THROUGH.get(parent, ()):
            continue
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            raise ValueError(f"{req.name} is not installed here: pip install -e '.[all]' first") from None
        if name != "bqx-ml":
            pins[name] = dist.version
        todo.extend((r, frozenset(req.extras), name) for r in dist.requires or [])
    return dict(sorted(pins.items()))


def image_requirements(root: Path, extras: str) -> str:
    """The exact requirements an image installs with ``pip install --no-deps``: bqx-ml and the pruned
    closure of its extras, at the versions pinned in images/constraints.txt."""
    pins = dict(line.split("==", 1) for line in (root / "images" / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    names = dependency_closure(tuple(extras.split(",")), prune=True)
    missing = sorted(set(names) - set(pins))
    if missing:
        raise ValueError(f"images/constraints.txt lacks {', '.join(missing)}: run bqx images --write-constraints")
    return "".join(f"{n}=={pins[n]}\n" for n in names) + f"bqx-ml=={__version__}\n"


def write_constraints(path: Path) -> Path:
    from bqx.io import write_text

    lines = [f"{name}=={version}" for name, version in dependency_closure().items()]
    return write_text(CONSTRAINTS_HEADER + "\n".join(lines) + "\n", path)


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
