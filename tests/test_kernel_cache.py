"""Stale numba caches of the hand-written feature kernels are dropped when any feature module changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import bqx.features
from bqx.features.kernel_cache import STAMP, drop_stale, sources_digest


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "features"
    pkg.mkdir()
    (pkg / "latest.py").write_text("def ewm(x):\n    return x\n")
    (pkg / "hmm_regime.py").write_text("from latest import ewm\n")
    (pkg / "__pycache__").mkdir()
    for name in ("hmm_regime.filter-12.py311.nbi", "hmm_regime.filter-12.py311.1.nbc", "hmm_regime.cpython-311.pyc"):
        (pkg / "__pycache__" / name).write_bytes(b"x")
    return pkg


def test_caches_go_when_a_module_changes_and_stay_otherwise(tmp_path):
    pkg = _package(tmp_path)
    assert drop_stale(pkg) == ["hmm_regime.filter-12.py311.1.nbc", "hmm_regime.filter-12.py311.nbi"]
    assert sorted(p.name for p in (pkg / "__pycache__").iterdir()) == [
        "bqx-features.sha256", "bqx-features.sha256.lock", "hmm_regime.cpython-311.pyc"]
    (pkg / "__pycache__" / "hmm_regime.filter-12.py311.nbi").write_bytes(b"rebuilt")
    assert drop_stale(pkg) == []  # same sources: the rebuilt cache stays
    (pkg / "latest.py").write_text("def ewm(x):\n    return 2 * x\n")  # a primitive the kernel calls changes
    assert drop_stale(pkg) == ["hmm_regime.filter-12.py311.nbi"]
    assert (pkg / "__pycache__" / STAMP).read_text() == sources_digest(pkg)


def test_a_cache_folder_that_cannot_be_written_is_left_alone(tmp_path):
    pkg = _package(tmp_path)
    shutil.rmtree(pkg / "__pycache__")
    (pkg / "__pycache__").write_text("not a folder")
    assert drop_stale(pkg) == []


def test_the_installed_package_is_stamped_with_its_own_sources():
    pkg = Path(bqx.features.__file__).parent
    stamp = pkg / "__pycache__" / STAMP
    if stamp.parent.is_dir() and stamp.exists():  # absent only where __pycache__ cannot be written
        assert stamp.read_text() == sources_digest(pkg)
