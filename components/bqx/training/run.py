"""The train stage for one pair: launch training on a backend, then evaluate on the test split."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from bqx.config import Settings
from bqx.model_package import load_tarball
from bqx.targets import BQX_NOW, fwd_return_column, position_sign
from bqx.training.evaluate import evaluate, model_card
from bqx.training.local import hyperparameters_for, train_local


def train_pair(dataset_dir: str | Path, settings: Settings, out_tarball: str | Path, backend: str = "local") -> dict:
    """Train from a select-stage dataset dir (train/val/test Parquet + selection.json); returns
    ``{"meta": ..., "metrics": ...}`` with test metrics next to the zero baseline."""
    if backend not in ("local", "sagemaker"):
        raise ValueError(f"unknown training backend {backend!r} (local or sagemaker)")
    d = Path(dataset_dir)
    with tempfile.TemporaryDirectory(prefix="bqx-channels-") as tmp:
        channels = {}
        for channel, split_name in (("train", "train"), ("validation", "val")):
            cdir = Path(tmp) / channel
            cdir.mkdir()
            shutil.copyfile(d / f"{split_name}.parquet", cdir / f"{split_name}.parquet")
            channels[channel] = cdir
        shutil.copyfile(d / "selection.json", channels["train"] / "selection.json")
        hp = hyperparameters_for(dataclasses.asdict(settings.train), settings.seed)
        if backend == "local":
            meta = train_local(channels, hp, Path(out_tarball))
        else:
            from bqx.training.sagemaker import train_sagemaker

            pair = json.loads((d / "selection.json").read_text()).get("pair", "pair")
            meta = train_sagemaker(channels, hp, Path(out_tarball), settings, pair)
    loaded = load_tarball(out_tarball)
    test = pd.read_parquet(d / "test.parquet")
    metrics = evaluate(test[loaded.selection["target"]].to_numpy(), loaded.predict(test[loaded.features]),
                       test[BQX_NOW].to_numpy(), test[fwd_return_column(settings.horizon)].to_numpy(),
                       settings.horizon, position_sign(settings.bqx_version), settings.eval_cost_bps)
    card = model_card(str(loaded.selection.get("pair")), metrics, meta, loaded.selection, settings.eval_cost_bps)
    return {"meta": meta, "metrics": metrics, "model_card": card}
