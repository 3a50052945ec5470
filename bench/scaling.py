"""How cost grows: extract at 1 month, 6 months, 1 year and 2 years of bars (one pair, one core), and
the whole pipeline (``bqx run --local``) at 1, 7, 14 and 28 pairs, each measured in its own process.

Extract gets the 28-pair panel of its span as the stage does. Each size prints its wall time and peak
RSS; then the per-row (extract) and per-pair (pipeline) cost relative to the smallest size, which stays
near 1 when cost grows linearly, and a 10-year backfill estimated from the largest sizes.

    python bench/scaling.py                       # extract at 4 spans, pipeline at 4 pair counts x 21 days
    python bench/scaling.py --pipeline-days 65    # a longer pipeline span
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPANS = {"1 month": 21, "6 months": 129, "1 year": 259, "2 years": 518}  # trading days
PAIR_COUNTS = (1, 7, 14, 28)
ROWS_PER_DAY = 1440


def extract_once(days: int) -> None:
    """In this process: the 28-pair bars and panel of ``days``, then eurusd's extract (timed)."""
    import pandas as pd

    from bqx.config import Settings
    from bqx.extract import extract_pair
    from bqx.panel import build_panel
    from bqx.sample import generate

    settings = Settings()
    bars = generate(days=days, seed=1)
    panel = build_panel(bars, settings)
    one: pd.DataFrame = bars["eurusd"]
    del bars
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        done = extract_pair(one, "eurusd", settings, out, panel)
        wall = time.perf_counter() - t0
    print(f"rows: {done.rows}")
    print(f"wall: {wall:.3f}")
    print(f"peak: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}")


def _figures(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([^:\n]+): (\S+)", text, re.M))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline-days", type=int, default=21)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    per_row = {}
    for label, days in SPANS.items():
        run = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--extract", str(days)],
                             capture_output=True, text=True, check=True)
        f = _figures(run.stdout)
        rows, wall, peak = int(f["rows"]), float(f["wall"]), int(f["peak"])
        per_row[label] = wall / rows
        print(f"extract {label} ({rows:,} rows) wall time: {wall:.2f} s")
        print(f"extract {label} peak RSS: {peak / 1e9:.2f} GB")
    first = next(iter(per_row.values()))
    for label, cost in per_row.items():
        print(f"extract {label} cost per row vs 1 month: {cost / first:.2f} ratio")
    year = per_row["2 years"] * ROWS_PER_DAY * 259
    print(f"extract 10-year backfill, one pair, one core (from the 2-year rate): {10 * year / 60:.1f} min")
    print(f"extract 10-year backfill, 28 pairs on 2 cores: {28 * 10 * year / 2 / 3600:.1f} h")
    if args.skip_pipeline:
        return
    per_pair = {}
    bench = Path(__file__).with_name("pipeline.py")
    for n in PAIR_COUNTS:
        run = subprocess.run([sys.executable, str(bench), "--pairs", str(n), "--days", str(args.pipeline_days)],
                             capture_output=True, text=True, check=True)
        f = _figures(run.stdout)
        wall, peak = float(f["pipeline wall time"]), float(f["peak RSS (whole process tree)"])
        per_pair[n] = wall / n
        print(f"pipeline {n} pairs x {args.pipeline_days} days wall time: {wall:.1f} s")
        print(f"pipeline {n} pairs x {args.pipeline_days} days peak RSS: {peak:.2f} GB")
    for n, cost in per_pair.items():
        print(f"pipeline {n} pairs cost per pair vs 1 pair: {cost / per_pair[1]:.2f} ratio")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--extract":
        extract_once(int(sys.argv[2]))
    else:
        main()
