"""(Named selection.py, not select.py: a script named select.py would shadow the stdlib module.)

Lagging and selection for one pair x one year of 1-minute bars (~372k rows, 2,640 candidates).

Each stage runs in its own process, as in the pipeline, and reports its wall time and peak RSS:
prepare (sample year + 28-pair panel), extract (1,080 features), lag (plan, split, sampled training
rows), select (the candidates on that sample, importance, quota) and dataset (what train, tune and
drift each do first: the 250 chosen columns for every row of the three splits, built from the
features, timed against reading the same frames from a stored Parquet copy, as before session 13).
Then the bytes each stage leaves. Budgets: peak RSS <= 4 GB per stage (issue 4), <= 1.2 GB of
artifacts per pair-year (issue 19).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bqx.config import Settings

DAYS = 259


def stage(name: str, root: Path) -> None:
    settings = Settings()
    t0 = time.perf_counter()
    if name == "prepare":
        from bqx.panel import build_panel, save_panel
        from bqx.sample import generate

        bars = generate(days=DAYS, seed=1)
        save_panel(build_panel(bars, settings), root / "panel" / "panel.parquet")
        bars["eurusd"].to_parquet(root / "eurusd.parquet")
    elif name == "extract":
        import pandas as pd

        from bqx.extract import extract_pair
        from bqx.panel import load_panel

        extract_pair(pd.read_parquet(root / "eurusd.parquet"), "eurusd", settings, root / "features",
                     load_panel(root / "panel" / "panel.parquet"))
    elif name == "lag":
        from bqx.lag import run

        run(root / "features", settings, root / "candidates")
    elif name == "select":
        from bqx.select import run

        result = run(root / "candidates", root / "features", "eurusd", settings, root / "dataset")
        counts = result.domain_counts
        print(f"selected: {len(result.features)} features (idx {counts['idx']}, bqx {counts['bqx']}, "
              f"cross {counts['cross']})")
    elif name == "dataset":  # what train, tune and drift each do first (imports before the clock)
        from bqx.dataset import PairDataset
        from bqx.io import write_parquet

        t0 = time.perf_counter()
        frames = PairDataset.open(root / "dataset", root / "features").frames()
        print(f"dataset from the features: {time.perf_counter() - t0:.2f} s")
        print(f"dataset rows: {sum(len(f) for f in frames.values())} rows")
        print(f"dataset peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")
        for split, frame in frames.items():  # the copy select used to store, for the next process to read
            write_parquet(frame, root / "copy" / f"{split}.parquet")
        print(f"stored copy size (not kept): {_bytes(root / 'copy') / 1e9:.3f} GB")
        return
    elif name == "copy":  # the same frames read from a stored copy, in a fresh process as well
        import pandas as pd

        t0 = time.perf_counter()
        for split in ("train", "val", "test"):
            pd.read_parquet(root / "copy" / f"{split}.parquet")
        print(f"dataset from a stored copy: {time.perf_counter() - t0:.2f} s")
        return
    print(f"{name} wall time: {time.perf_counter() - t0:.2f} s")
    print(f"{name} peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "panel").mkdir()
        for name in ("prepare", "extract", "lag", "select", "dataset", "copy"):
            subprocess.run([sys.executable, __file__, "--stage", name, tmp], check=True)
        import shutil

        shutil.rmtree(Path(tmp) / "copy")
        outputs = {"extract": "features", "lag": "candidates", "select": "dataset"}
        sizes = {stage: _bytes(Path(tmp) / d) for stage, d in outputs.items()}
        for stage, n in sizes.items():
            print(f"{stage} output: {n / 1e9:.3f} GB")
        print(f"artifacts per pair-year (extract + lag + select): {sum(sizes.values()) / 1e9:.3f} GB")
        from bqx.plan import disk_bytes

        print(f"bqx plan's estimate per pair-year (with bars, panel share, model): "
              f"{disk_bytes(Settings(), n_pairs=1) / 1e9:.3f} GB")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--stage":
        stage(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
