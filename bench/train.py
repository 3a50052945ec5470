"""Training one pair: 250 features x one year of rows, CatBoost on 2 threads, through the training
entrypoint (the SageMaker contract, run by the local launcher in a subprocess).

Data: 250 float32 features with a weak linear signal plus noise, split 70/15 as the pipeline does,
for 372,960 yearly rows. Prints the wall time, the entrypoint's own training seconds and the peak RSS
of the training process (the launcher's child).
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.config import Settings
from bqx.train.local import hyperparameters_for, train_local

ROWS = 259 * 1440
FEATURES = 250


def main() -> None:
    rng = np.random.default_rng(0)
    settings = Settings()
    names = [f"bench.f{i:03d}" for i in range(FEATURES)]
    weights = rng.standard_normal(FEATURES) * (rng.random(FEATURES) < 0.1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n_train, n_val = int(ROWS * 0.70), int(ROWS * 0.15)
        for channel, n in (("train", n_train), ("validation", n_val)):
            x = rng.standard_normal((n, FEATURES)).astype(np.float32)
            frame = pd.DataFrame(x, columns=names)
            frame["target_bqx60_h60"] = x @ weights * 0.01 + rng.standard_normal(n) * 0.05
            (root / channel).mkdir()
            frame.to_parquet(root / channel / f"{channel}.parquet")
            del x, frame
        (root / "train" / "selection.json").write_text(json.dumps({
            "features": names, "target": "target_bqx60_h60", "catalog_version": "bench", "settings_hash": "bench",
            "pair": "bench"}))
        hp = hyperparameters_for(settings.training)
        t0 = time.perf_counter()
        meta = train_local({"train": root / "train", "validation": root / "validation"}, hp, root / "model.tar.gz")
        wall = time.perf_counter() - t0
    print(f"train rows: {n_train} rows")
    print(f"features: {FEATURES} features")
    print(f"threads: {settings.training.thread_count} threads")
    print(f"iterations: {settings.training.iterations} iterations (best {meta['best_iteration']})")
    print(f"entrypoint wall time: {wall:.2f} s")
    print(f"catboost fit time: {meta['train_seconds']:.2f} s")
    print(f"training process peak RSS: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2:.2f} GB")


if __name__ == "__main__":
    main()
