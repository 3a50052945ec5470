"""The extract stage: bars of one pair -> every computed catalog table, as float32, plus targets.

Writes one Parquet per table (``tables/{table}_{pair}.parquet``) and a wide frame
(``features.parquet``: ``ts_utc``, the float64 target columns, then every feature in catalog order as
float32). Rows before the baseline bar and the warm-up rows (the longest warm-up of any computed
table) are dropped. Tables are computed one at a time and narrowed to float32 at once, so peak memory
is the float32 feature block plus one table in float64.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bqx import targets
from bqx.catalog import Catalog
from bqx.config import Settings
from bqx.features import bqx_core
from bqx.features.registry import FAMILIES, PairInputs
from bqx.io import atomic_path
from bqx.panel import Panel, build_panel, load_panel

log = logging.getLogger(__name__)


def _col(b: pd.DataFrame, name: str) -> np.ndarray:
    if name in b.columns:
        return b[name].to_numpy(dtype=np.float64)
    return np.full(len(b), np.nan)


def pair_inputs(bars: pd.DataFrame, settings: Settings, pair: str,
                panel: Panel | None = None) -> tuple[pd.DataFrame, PairInputs]:
    """Bars from the baseline row on, and the series the tables are computed from. Without a panel the
    cross-pair tables see this pair alone (the other pairs' columns are NaN)."""
    start = bqx_core.baseline_row(bars["ts_utc"], settings.baseline_date)
    if start:
        log.info("dropping %d bars before the baseline date %s", start, settings.baseline_date)
    b = bars.iloc[start:].reset_index(drop=True)
    close = _col(b, "close")
    base = close[0]
    idx = bqx_core.rate_idx(close, base)
    o, h, lo = _col(b, "open"), _col(b, "high"), _col(b, "low")
    ts_ns = pd.DatetimeIndex(b["ts_utc"]).asi8
    if panel is None:
        panel = build_panel({pair: b}, settings)
    elif pair not in panel.pairs:
        raise ValueError(f"pair {pair} is not in the panel (it holds {', '.join(panel.pairs)})")
    inputs = PairInputs(
        ts_ns=ts_ns, open=o, high=h, low=lo, close=close, volume=_col(b, "volume"),
        bid=_col(b, "bid"), ask=_col(b, "ask"), idx=idx, idx_open=bqx_core.rate_idx(o, base),
        idx_high=bqx_core.rate_idx(h, base), idx_low=bqx_core.rate_idx(lo, base),
        bqx=bqx_core.primary_bqx(idx, settings), pair=pair, panel=panel, panel_rows=panel.rows_for(ts_ns),
    )
    return b, inputs


def iter_tables(inputs: PairInputs, settings: Settings) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Each computed table of the catalog in turn: (table key, {feature name: float64 values})."""
    for t in Catalog(settings).computed_tables:
        yield t.key, FAMILIES[t.key].compute(inputs, settings)


def compute_tables(inputs: PairInputs, settings: Settings) -> dict[str, dict[str, np.ndarray]]:
    """Every computed table at once (tests and small data; the stage streams with iter_tables)."""
    return dict(iter_tables(inputs, settings))


def _write_table(columns: dict[str, np.ndarray], path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


def extract_pair(bars: pd.DataFrame, pair: str, settings: Settings, out_dir: str | Path,
                 panel: Panel | None = None) -> Path:
    """Compute, trim the warm-up, write the per-table Parquet files and the wide frame; return its path."""
    catalog = Catalog(settings)
    b, inputs = pair_inputs(bars, settings, pair, panel)
    warm = catalog.warmup_rows()
    if len(b) <= warm:
        raise ValueError(f"pair {pair}: {len(b)} bars after the baseline, need more than the {warm} warm-up rows")
    out = Path(out_dir)
    ts = b["ts_utc"].iloc[warm:].reset_index(drop=True)
    ts_arrow = pa.array(ts)
    wide: dict[str, object] = {"ts_utc": ts_arrow}
    wide.update({name: vals[warm:] for name, vals in targets.compute(inputs.idx, settings).items()})
    for key, block in iter_tables(inputs, settings):
        narrow = {name: np.ascontiguousarray(vals[warm:], dtype=np.float32) for name, vals in block.items()}
        del block
        _write_table({"ts_utc": ts_arrow, **narrow}, out / "tables" / f"{catalog.table(key).table_name(pair)}.parquet")
        wide.update({f"{key}.{name}": v for name, v in narrow.items()})
    expected = [f.name for f in catalog.features]
    got = [c for c in wide if "." in c]
    if got != expected:
        raise AssertionError(f"computed columns differ from the catalog's feature list ({len(got)} vs {len(expected)})")
    path = out / "features.parquet"
    _write_table(wide, path)  # type: ignore[arg-type]
    return path


def run(bars_dir: str | Path, pair: str, settings: Settings, out_dir: str | Path,
        panel_dir: str | Path | None = None) -> dict:
    """Stage entry: read ``{bars_dir}/{pair}.parquet`` (and ``{panel_dir}/panel.parquet``), extract,
    write under ``out_dir``; returns a summary."""
    bars = pd.read_parquet(Path(bars_dir) / f"{pair}.parquet")
    panel = load_panel(Path(panel_dir) / "panel.parquet") if panel_dir is not None else None
    catalog = Catalog(settings)
    rows = pq.ParquetFile(extract_pair(bars, pair, settings, out_dir, panel)).metadata.num_rows
    return {"pair": pair, "rows": rows, "features": len(catalog.features), "warmup_rows": catalog.warmup_rows()}
