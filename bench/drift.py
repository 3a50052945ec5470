"""Drift report for 250 features x 100k rows, both domains (budget <= 60 s; bench/README.md).

Reference and current frames of 100,000 rows each: 125 idx and 125 bqx features with a shift in half
of the bqx ones. Prints each domain's drift index and share of features past their calibrated
threshold, the wall time of the summary (calibration and scores) and of the summary plus the HTML
page (one Evidently report of the most drifted features), the page's size and the peak RSS.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.catalog import Catalog
from bqx.config import Settings
from bqx.drift.report import run_drift

ROWS = 100_000


def main() -> None:
    rng = np.random.default_rng(0)
    cat = Catalog()  # real catalog names, so domains come from the catalog as in the pipeline
    idx = [f.name for f in cat.features if f.domain == "idx"][:125]
    bqx = [f.name for f in cat.features if f.domain == "bqx"][:125]
    cols = idx + bqx
    ref = pd.DataFrame(rng.standard_normal((ROWS, len(cols))).astype(np.float32), columns=cols)
    cur = pd.DataFrame(rng.standard_normal((ROWS, len(cols))).astype(np.float32), columns=cols)
    cur[bqx[::2]] += 0.5
    settings = Settings()
    t0 = time.perf_counter()
    summary = run_drift(ref, cur, cols, settings)
    t_summary = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_drift(ref, cur, cols, settings, Path(tmp) / "report.html")
        t_html = time.perf_counter() - t0
        size = (Path(tmp) / "report.html").stat().st_size
    d = summary.domains
    print(f"features: {len(cols)} features")
    print(f"rows: {ROWS} rows per frame (sampled to {settings.drift.sample_rows})")
    for dom in ("idx", "bqx"):
        print(f"{dom} drift index: {d[dom].index:.2f} score")
        print(f"{dom} share past threshold: {d[dom].share:.2f} ratio")
    print(f"summary wall time: {t_summary:.2f} s")
    print(f"summary + HTML wall time: {t_html:.2f} s")
    print(f"HTML size: {size / 1e6:.1f} MB")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")


if __name__ == "__main__":
    main()
