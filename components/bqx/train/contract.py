"""Paths of the SageMaker training contract (``/opt/ml``), with the overrides a launcher may set.

SageMaker mounts hyperparameters at ``/opt/ml/input/config/hyperparameters.json`` (all values are
strings), each channel at ``/opt/ml/input/data/<channel>/``, and tars ``/opt/ml/model/`` into
model.tar.gz. A failure reason written to ``/opt/ml/output/failure`` becomes the job's FailureReason.
``BQX_OPT_ML`` moves the whole tree (the local launcher points it at a temp dir); the toolkit's
``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>`` and ``SM_OUTPUT_DATA_DIR`` override single paths.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

CHANNELS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class OptMl:
    root: Path

    @classmethod
    def from_env(cls) -> OptMl:
        return cls(Path(os.environ.get("BQX_OPT_ML", "/opt/ml")))

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    def channel(self, name: str) -> Path:
        env = os.environ.get(f"SM_CHANNEL_{name.upper()}")
        return Path(env) if env else self.root / "input" / "data" / name

    @property
    def model_dir(self) -> Path:
        return Path(os.environ.get("SM_MODEL_DIR", self.root / "model"))

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return Path(os.environ.get("SM_OUTPUT_DATA_DIR", self.output_dir / "data"))

    @property
    def checkpoint_dir(self) -> Path:
        """Where SageMaker syncs checkpoints with S3 (managed spot training); absent otherwise."""
        return Path(os.environ.get("SM_CHECKPOINT_DIR", self.root / "checkpoints"))

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    def hyperparameters(self) -> dict[str, str]:
        if not self.hyperparameters_file.exists():
            return {}
        raw = json.loads(self.hyperparameters_file.read_text())
        return {str(k): str(v) for k, v in raw.items()}
