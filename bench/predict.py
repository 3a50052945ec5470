"""Batch prediction: one month of bars for all 28 pairs with 250-feature models (issue 17's goal: <= 2
minutes on this 2-core machine), run as `bqx predict` in a subprocess (its wall time and peak RSS), next
to the reference measured in the same run: the serving engine computing the same pair's features one
minute at a time over the same bars.

Models: 28 packages trained by the training entrypoint on synthetic rows (300 trees of depth 6), each on
250 catalog features drawn with a seed from every table, packaged with extract's online_state from 5
trading days of bars before the month (baseline close, HMM fit, the 28-pair panel). Bars: 3 trading days
of history, then 22 trading days (the month) predicted with --since.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.catalog import Catalog
from bqx.config import Settings
from bqx.extract import online_state, pair_inputs
from bqx.model_package import feature_settings, load_tarball
from bqx.pairs import PAIRS
from bqx.panel import build_panel
from bqx.sample import generate
from bqx.serving.synthetic import synthetic_model

FEATURES, MONTH_DAYS, HISTORY_DAYS = 250, 22, 3
MONTH_START = "2024-08-05"


def models(root: Path) -> Path:
    settings = Settings()
    train = generate(list(PAIRS), days=5, seed=1, start="2024-07-01")
    panel = build_panel(train, settings)
    names = Catalog(settings).candidate_names()
    repo = root / "repo"
    entries = {}
    for i, pair in enumerate(PAIRS):
        b, inp = pair_inputs(train[pair], settings, pair, panel=panel)
        state = json.loads(json.dumps(online_state(b, inp, settings)))
        chosen = sorted(np.random.default_rng(i).choice(names, FEATURES, replace=False).tolist())
        synthetic_model(repo / f"{pair}.tar.gz", pair, chosen, rows=2000, iterations=300, depth=6, seed=i,
                        online_state=state)
        entries[pair] = {"target_model": f"{pair}.tar.gz"}
    (repo / "manifest.json").write_text(json.dumps({"models": entries}))
    return repo


def online_reference(repo: Path, bars: dict, since_ns: int) -> tuple[float, int]:
    """Seconds the serving engine takes to step one pair's features through the month, minute by minute
    (the market advanced by every pair's close, the pair's engine by its bar, its model row read), and
    the minutes stepped."""
    from bqx.columns import lag_of
    from bqx.serving.engine import PairEngine, market_keep, tables_for
    from bqx.serving.market import Market

    model = load_tarball(repo / "eurusd.tar.gz")
    settings, snapshot = feature_settings(model.selection)
    before = {p: b[b["ts_utc"].astype("int64") < since_ns] for p, b in bars.items()}
    market = Market(before, settings, market_keep(settings))
    engine = PairEngine("eurusd", before["eurusd"], tables_for(model.features), settings,
                        max(lag_of(f) for f in model.features), market, snapshot)
    closes: dict[int, dict[str, float]] = {}
    for p, b in bars.items():
        ts, c = b["ts_utc"].astype("int64").to_numpy(), b["close"].to_numpy()
        for i in np.flatnonzero(ts >= since_ns):
            closes.setdefault(int(ts[i]), {})[p] = float(c[i])
    own = bars["eurusd"][bars["eurusd"]["ts_utc"].astype("int64") >= since_ns]
    mine = {int(t): row for t, row in zip(own["ts_utc"].astype("int64"), own.to_dict("records"), strict=True)}
    t0 = time.perf_counter()
    for t in sorted(closes):
        market.advance(t, closes[t])
        if t in mine:
            engine.update({k: float(v) for k, v in mine[t].items() if k != "ts_utc"}, t)
            engine.row(model.features)
    return time.perf_counter() - t0, len(mine)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bqx-bench-predict-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        repo = models(root)
        print(f"setup (28 models): {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        bars = generate(list(PAIRS), days=HISTORY_DAYS + MONTH_DAYS, seed=2, start="2024-07-31")
        (root / "bars").mkdir()
        for pair, frame in bars.items():
            frame.to_parquet(root / "bars" / f"{pair}.parquet", index=False)
        months = {p: int((b["ts_utc"] >= MONTH_START).sum()) for p, b in bars.items()}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bqx.cli", "predict", "--bars", str(root / "bars"), "--models",
                               str(repo), "--out", str(root / "predictions.parquet"), "--since", MONTH_START],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        rows = len(pd.read_parquet(root / "predictions.parquet"))
        per_pair = wall / len(PAIRS)
        online, minutes = online_reference(repo, bars, pd.Timestamp(MONTH_START, tz="UTC").value)
        print(f"predict wall time (28 pairs, one month): {wall:.1f} s")
        print("predict goal: 120 s")
        print(f"predictions: {rows} rows")
        print(f"month bars per pair: {int(np.mean(list(months.values())))} bars")
        print(f"predict per pair: {per_pair:.2f} s")
        print(f"online engine per pair (same month, minute by minute, features only): {online:.2f} s")
        print(f"batch / online speed-up per pair: {online / per_pair:.1f} x")
        print(f"predict peak RSS: {peak / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
