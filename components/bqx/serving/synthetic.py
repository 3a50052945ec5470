"""Real model packages on synthetic rows, for the serving tests and bench/serve.py.

The model is trained by the real training entrypoint (``bqx.train.local.train_local``), so the
tarball has exactly what a pipeline run produces: model.cbm, selection.json, meta.json, reference.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.artifacts import SELECTION, split_file
from bqx.config import Settings
from bqx.train.local import train_local


def feature_names(n: int) -> list[str]:
    """``n`` names in the catalog's ``{table}.{feature}`` form, half rate_idx, half BQX."""
    return [f"technical_idx.f{i:03d}" if i % 2 == 0 else f"technical_bqx.f{i:03d}" for i in range(n)]


def synthetic_channels(data_dir: str | Path, pair: str, features: list[str], rows: int = 2000, seed: int = 0,
                       online_state: dict | None = None) -> dict[str, Path]:
    """The training channels SageMaker mounts (``train`` and ``validation`` Parquet, ``selection.json``
    in ``train``) for y = a few features + noise, under ``data_dir``."""
    rng = np.random.default_rng(seed)
    settings = Settings()
    target = settings.features.target_name
    selection = {"pair": pair, "features": features, "target": target, "catalog_version": "synthetic",
                 "settings_hash": settings.settings_hash(), "settings": settings.to_dict()}
    if online_state is not None:
        selection["online_state"] = online_state
    channels = {}
    for ch in ("train", "validation"):
        x = rng.standard_normal((rows, len(features))).astype(np.float32)
        df = pd.DataFrame(x, columns=features)
        df[target] = 0.05 * x[:, 0] - 0.03 * x[:, 1] + 0.01 * rng.standard_normal(rows)
        channels[ch] = Path(data_dir) / ch
        channels[ch].mkdir(parents=True, exist_ok=True)
        df.to_parquet(channels[ch] / split_file(ch))
    (channels["train"] / SELECTION).write_text(json.dumps(selection))
    return channels


def synthetic_hyperparameters(iterations: int = 100, depth: int = 6, seed: int = 0) -> dict[str, str]:
    return {"iterations": str(iterations), "depth": str(depth), "learning_rate": "0.2", "thread_count": "1",
            "random_seed": str(seed)}


def synthetic_model(out_tarball: str | Path, pair: str, features: list[str], rows: int = 2000,
                    iterations: int = 100, depth: int = 6, seed: int = 0, online_state: dict | None = None) -> Path:
    """Train on y = a few features + noise and write ``out_tarball`` (with extract's ``online_state``
    in selection.json when given, as a pipeline-trained package has it)."""
    with tempfile.TemporaryDirectory(prefix="bqx-synth-") as tmp:
        channels = synthetic_channels(tmp, pair, features, rows, seed, online_state)
        train_local(channels, synthetic_hyperparameters(iterations, depth, seed), Path(out_tarball))
    return Path(out_tarball)
