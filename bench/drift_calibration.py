"""How often the calibrated drift status fires: on unchanged data, and with a shift in one domain.

Many seeded samples of 4 pairs x 10 trading days (one unchanged generating process each) go through
the real feature engine; each pair-run compares its first 70% of rows (the reference, as training
rows) with its last 15% (the current, as the test split), with the calibration of bqx.drift.scores
and the status thresholds of the default settings. Scenarios: no change; in one domain's features of
the current window, mean + 1 reference sd; or volatility x 2 (deviations from the window's mean
doubled). Prints, per scenario and domain, the share of pair-runs whose status is critical. Goals:
<= 5% with no change, >= 95% in the shifted domain, the other domain as with no change.

    python bench/drift_calibration.py [--seeds 24] [--first-seed 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

PAIRS = ("eurusd", "gbpusd", "usdjpy", "audusd")
SCENARIOS = ("none", "idx_mean", "bqx_mean", "idx_vol", "bqx_vol")


def pair_runs(seed: int) -> list[dict[str, dict[str, float]]]:
    """Drift index per scenario and domain for each pair of one seeded sample."""
    from bqx.catalog import Catalog
    from bqx.config import Settings
    from bqx.drift.scores import calibrate, scores, spread
    from bqx.extract import compute_tables, pair_inputs
    from bqx.panel import build_panel
    from bqx.sample import generate
    from bqx.splits import purge_rows

    s = Settings()
    cat = Catalog(s)
    warm = cat.warmup_rows()
    bars = generate(PAIRS, days=10, seed=10_000 + seed)
    panel = build_panel(bars, s)
    out = []
    for pair in PAIRS:
        _, inp = pair_inputs(bars[pair], s, pair, panel)
        tables = compute_tables(inp, s)
        names = [f"{k}.{n}" for k, t in tables.items() for n in t]
        x = np.column_stack([v[warm:] for t in tables.values() for v in t.values()]).astype(np.float32)
        x = x.astype(np.float64)
        n = len(x)
        ref, cur0 = x[: int(0.70 * n)], x[int(0.85 * n):]
        dom = np.array([cat.domain_of(c) for c in names])
        cal = calibrate(ref, len(cur0), purge_rows(s))
        sd = spread(ref)
        result = {}
        for scenario in SCENARIOS:
            cur = cur0.copy()
            if scenario != "none":
                d, kind = scenario.split("_")
                sel = dom == d
                if kind == "mean":
                    cur[:, sel] += sd[sel]
                else:
                    centre = np.nanmean(cur[:, sel], axis=0)
                    cur[:, sel] = (cur[:, sel] - centre) * 2 + centre
            _, score = scores(ref, cur, cal)
            result[scenario] = {d: float(np.nanmean(score[dom == d])) for d in ("idx", "bqx")}
        out.append(result)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        runs = [r for batch in pool.map(pair_runs, range(args.first_seed, args.first_seed + args.seeds)) for r in batch]
    from bqx.config import Settings
    from bqx.drift.report import status_of

    settings = Settings()
    print(f"pair-runs: {len(runs)} runs")
    for scenario in SCENARIOS:
        for d in ("idx", "bqx"):
            share = np.mean([status_of(r[scenario][d], settings) == "critical" for r in runs])
            print(f"critical {d} with {scenario}: {share:.1%} runs")
    for d in ("idx", "bqx"):
        calm = [r["none"][d] for r in runs]
        print(f"{d} index on unchanged data, 95th percentile: {np.quantile(calm, 0.95):.2f} score")
        print(f"{d} index on unchanged data, maximum: {max(calm):.2f} score")
        for kind in ("mean", "vol"):
            low = np.quantile([r[f"{d}_{kind}"][d] for r in runs], 0.05)
            print(f"{d} index with {d}_{kind}, 5th percentile: {low:.2f} score")
    print(f"wall time: {time.perf_counter() - t0:.0f} s")
    print(f"peak RSS (largest worker): {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
