"""The extract stage: bars of one pair -> every computed catalog table, as float32, plus targets.

Writes one Parquet per table (``{table}_{pair}.parquet``) and a wide frame (``features.parquet``:
``ts_utc``, the float64 target columns, then every feature in catalog order as float32). Rows before
the baseline bar and the warm-up rows (the longest warm-up of any computed table) are dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bqx import targets
from bqx.catalog import Catalog
from bqx.config import Settings
from bqx.features import bqx_core
from bqx.features.registry import FAMILIES, PairInputs
from bqx.io import write_parquet

log = logging.getLogger(__name__)


def pair_inputs(bars: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, PairInputs]:
    """Bars from the baseline row on, and the series the tables are computed from."""
    start = bqx_core.baseline_row(bars["ts_utc"], settings.baseline_date)
    if start:
        log.info("dropping %d bars before the baseline date %s", start, settings.baseline_date)
    b = bars.iloc[start:].reset_index(drop=True)
    close = b["close"].to_numpy(dtype=np.float64)
    base = close[0]
    idx = bqx_core.rate_idx(close, base)
    cols = {k: b[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low")}
    inputs = PairInputs(cols["open"], cols["high"], cols["low"], close, idx, bqx_core.primary_bqx(idx, settings))
    return b, inputs


def compute_tables(inputs: PairInputs, settings: Settings) -> dict[str, dict[str, np.ndarray]]:
    """Every computed table of the catalog: table key -> {feature name: float64 values}."""
    catalog = Catalog(settings)
    return {t.key: FAMILIES[t.key].compute(inputs, settings) for t in catalog.computed_tables}


def extract_pair(bars: pd.DataFrame, pair: str, settings: Settings, out_dir: str | Path) -> pd.DataFrame:
    """Compute, trim the warm-up, write the per-table Parquet files and the wide frame; return the frame."""
    catalog = Catalog(settings)
    b, inputs = pair_inputs(bars, settings)
    warm = catalog.warmup_rows()
    if len(b) <= warm:
        raise ValueError(f"pair {pair}: {len(b)} bars after the baseline, need more than the {warm} warm-up rows")
    tables = compute_tables(inputs, settings)
    ts = b["ts_utc"].iloc[warm:].reset_index(drop=True)
    out = Path(out_dir)
    columns: dict[str, np.ndarray] = {}
    for key, block in tables.items():
        frame = pd.DataFrame({name: vals[warm:].astype(np.float32) for name, vals in block.items()})
        write_parquet(pd.concat([ts, frame], axis=1), out / "tables" / f"{catalog.table(key).table_name(pair)}.parquet")
        columns.update({f"{key}.{name}": frame[name].to_numpy() for name in frame.columns})
    tgt = {name: vals[warm:] for name, vals in targets.compute(inputs.idx, settings).items()}
    wide = pd.concat([ts, pd.DataFrame(tgt), pd.DataFrame(columns)], axis=1)
    expected = [f.name for f in catalog.features]
    if list(columns) != expected:
        raise AssertionError("computed columns differ from the catalog's feature list")
    write_parquet(wide, out / "features.parquet")
    return wide


def run(bars_dir: str | Path, pair: str, settings: Settings, out_dir: str | Path) -> dict:
    """Stage entry: read ``{bars_dir}/{pair}.parquet``, extract, write under ``out_dir``; returns a summary."""
    bars = pd.read_parquet(Path(bars_dir) / f"{pair}.parquet")
    wide = extract_pair(bars, pair, settings, out_dir)
    n_feat = wide.shape[1] - 1 - len(settings.horizons)
    return {"pair": pair, "rows": len(wide), "features": n_feat, "warmup_rows": Catalog(settings).warmup_rows()}
