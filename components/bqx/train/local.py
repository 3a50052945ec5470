"""Local training backend: lay out a temp dir like /opt/ml, run ``bqx train`` in a subprocess, tar the
model dir into model.tar.gz exactly as SageMaker does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bqx.artifacts import META
from bqx.config import TrainingSettings
from bqx.model_package import write_tarball
from bqx.train.contract import OptMl


class TrainingFailed(RuntimeError):
    pass


def hyperparameters_for(training: TrainingSettings) -> dict[str, str]:
    """The training job's hyperparameters: CatBoost's, its seed and the entrypoint's ``fit_stride``, as
    strings, as SageMaker passes them (and so do we, locally)."""
    return {**{k: str(v) for k, v in training.hyperparameters().items()}, "random_seed": str(training.seed),
            "fit_stride": str(training.fit_stride)}


def train_local(channels: dict[str, Path], hyperparameters: dict[str, str], out_tarball: Path,
                timeout_s: float = 3600) -> dict:
    """Run the training entrypoint against a temp /opt/ml tree; return meta.json; raise on failure."""
    with tempfile.TemporaryDirectory(prefix="bqx-opt-ml-") as root:
        opt = OptMl(Path(root))
        opt.config_dir.mkdir(parents=True)
        opt.hyperparameters_file.write_text(json.dumps(hyperparameters))
        for name, src in channels.items():
            shutil.copytree(src, opt.channel(name), copy_function=_link_or_copy)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
        env["BQX_OPT_ML"] = root
        proc = subprocess.run([sys.executable, "-m", "bqx.train.entrypoint"], env=env, capture_output=True,
                              text=True, timeout=timeout_s)
        if proc.returncode != 0:
            reason = opt.failure_file.read_text() if opt.failure_file.exists() else proc.stderr[-2000:]
            raise TrainingFailed(f"training failed (exit {proc.returncode}): {reason}")
        write_tarball(opt.model_dir, out_tarball)
        meta = json.loads((opt.model_dir / META).read_text())
        return {**meta, **_status(proc.stdout)}


def _link_or_copy(src: str, dst: str) -> None:
    """The channel files as hard links where both trees share a file system (the entrypoint only reads
    them), else copies: a pair-year's channels are hundreds of MB."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _status(stdout: str) -> dict:
    """The entrypoint's last line: ``{"status": "Completed", ..., "train_seconds": ...}``."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            status = json.loads(line)
        except ValueError:
            continue
        if isinstance(status, dict) and "train_seconds" in status:
            return {"train_seconds": status["train_seconds"]}
    return {}
