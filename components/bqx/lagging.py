"""The lag stage: base features -> candidates = base + lagged copies, as the catalog's lag plan says.

A lag of k rows is ``x(t - k)``: strictly past values, so lagging never breaks causality. The first
``max lag`` rows have incomplete lags and are dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bqx.catalog import Catalog, lag_name
from bqx.config import Settings


def max_lag(settings: Settings) -> int:
    return max(*settings.lags, settings.causality_lag)


def add_lags(features: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Return ts, targets, base features and every lagged candidate (float32), first max-lag rows dropped."""
    catalog = Catalog(settings)
    plan = catalog.lag_plan()
    n = len(features)
    k_max = max_lag(settings)
    if n <= k_max:
        raise ValueError(f"{n} feature rows: need more than the longest lag ({k_max} rows)")
    keep = slice(k_max, n)
    base_cols = [f.name for f in catalog.features]
    missing = [c for c in base_cols if c not in features.columns]
    if missing:
        raise ValueError(f"features frame lacks {len(missing)} catalog feature(s), e.g. {missing[:3]}")
    lagged = np.empty((n - k_max, len(plan)), dtype=np.float32)
    for j, (name, k) in enumerate(plan):
        col = features[name].to_numpy()
        lagged[:, j] = col[k_max - k : n - k]
    head = features.iloc[keep].reset_index(drop=True)
    lag_frame = pd.DataFrame(lagged, columns=[lag_name(nm, k) for nm, k in plan])
    return pd.concat([head, lag_frame], axis=1)


def run(features_dir: str | Path, settings: Settings, out_dir: str | Path) -> dict:
    """Stage entry: ``features.parquet`` -> ``candidates.parquet``; returns a summary."""
    from bqx.io import write_parquet

    frame = add_lags(pd.read_parquet(Path(features_dir) / "features.parquet"), settings)
    write_parquet(frame, Path(out_dir) / "candidates.parquet")
    n_cand = sum(1 for c in frame.columns if c != "ts_utc" and not c.startswith("target_"))
    return {"rows": len(frame), "candidates": n_cand}
