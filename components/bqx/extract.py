"""The extract stage: bars of one pair -> every computed catalog table, as float32, plus targets.

The output is one wide frame (``features.parquet``: ``ts_utc``, the float64 target and evaluation
columns, then every feature in catalog order as float32; LZ4 with BYTE_STREAM_SPLIT,
:data:`bqx.io.PARQUET_CODEC`). Rows before the baseline bar and the warm-up rows (the longest warm-up of
any computed table) are dropped. Tables are computed one at a time in float64 and narrowed to float32
at once; their float32 block is held for one write, or, for spans over :data:`IN_MEMORY_BYTES`,
staged per table on disk, so memory stays bounded however many years a pair has.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bqx import targets
from bqx.allocator import keep_freed_memory
from bqx.artifacts import FEATURES, ONLINE_STATE, PANEL, bars_file
from bqx.bars import modal_interval_s
from bqx.catalog import Catalog
from bqx.columns import TIME, feature_column
from bqx.config import Settings, interval_s
from bqx.features import hmm_regime, primary
from bqx.features.family import PairInputs
from bqx.features.registry import FAMILIES
from bqx.features.time_features import day_keys
from bqx.io import atomic_path, parquet_options, write_json
from bqx.panel import Panel, build_panel, load_panel

log = logging.getLogger(__name__)


def _col(b: pd.DataFrame, name: str) -> np.ndarray:
    if name in b.columns:
        return b[name].to_numpy(dtype=np.float64)
    return np.full(len(b), np.nan)


def settle_interval(settings: Settings, bars: pd.DataFrame) -> Settings:
    """The settings with ``bar_interval_s`` resolved: as stated, else the bars' modal spacing."""
    if settings.features.bar_interval_s is not None:
        return settings
    seen = modal_interval_s(pd.DatetimeIndex(bars["ts_utc"]).asi8)
    return settings.replace(bar_interval_s=seen or 60)


def pair_inputs(bars: pd.DataFrame, settings: Settings, pair: str, panel: Panel | None = None,
                base_close: float | None = None) -> tuple[pd.DataFrame, PairInputs]:
    """Bars from the baseline row on, and the series the tables are computed from. Without a panel the
    cross-pair tables see this pair alone (the other pairs' columns are NaN). ``base_close`` indexes
    rate_idx to a known baseline close (the server's, from the model package) instead of the first bar's."""
    start = primary.baseline_row(bars["ts_utc"], settings.features.baseline_date)
    if start:
        log.info("dropping %d bars before the baseline date %s", start, settings.features.baseline_date)
    b = bars.iloc[start:].reset_index(drop=True)
    close = _col(b, "close")
    base = close[0] if base_close is None else base_close
    idx = primary.rate_idx(close, base)
    o, h, lo = _col(b, "open"), _col(b, "high"), _col(b, "low")
    ts_ns = pd.DatetimeIndex(b["ts_utc"]).asi8
    if panel is None:
        panel = build_panel({pair: b}, settings)
    elif pair not in panel.pairs:
        raise ValueError(f"pair {pair} is not in the panel (it holds {', '.join(panel.pairs)})")
    inputs = PairInputs(
        ts_ns=ts_ns, open=o, high=h, low=lo, close=close, volume=_col(b, "volume"),
        bid=_col(b, "bid"), ask=_col(b, "ask"), idx=idx, idx_open=primary.rate_idx(o, base),
        idx_high=primary.rate_idx(h, base), idx_low=primary.rate_idx(lo, base),
        bqx=primary.primary_bqx(idx, settings), **day_keys(ts_ns), pair=pair, panel=panel,
        panel_rows=panel.rows_for(ts_ns),
    )
    return b, inputs


def iter_tables(inputs: PairInputs, settings: Settings) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Each table of the catalog in turn: (table key, {feature name: float64 values})."""
    for t in Catalog(settings).tables:
        yield t.key, FAMILIES[t.key].compute(inputs, settings)


def compute_tables(inputs: PairInputs, settings: Settings) -> dict[str, dict[str, np.ndarray]]:
    """Every computed table at once (tests and small data; the stage streams with iter_tables)."""
    return dict(iter_tables(inputs, settings))


ROW_GROUP = 65_536  # rows per Parquet row group; the wide frame is assembled one row group at a time
# Feature columns are continuous floats: dictionary encoding only costs time (4x slower writes here).


@dataclass(frozen=True)
class Extracted:
    path: Path  # features.parquet
    rows: int
    table_seconds: dict[str, float]
    bar_interval_s: int  # as stated, or the bars' modal spacing


# The float32 block of every table is held until the one write while it stays under this size (a
# pair-year: 1.6 GB); a longer span stages each table in a temporary file and assembles the wide frame
# one row group at a time, so memory stays at one table however many years a pair has.
IN_MEMORY_BYTES = 2 * 2**30


def _wide_options(schema: pa.Schema) -> dict:
    """How features.parquet is written, either way: the project's codec, statistics only for the time
    column (what readers filter on): per-page min/max of 1,080 float columns cost a third of the write
    and serve no reader."""
    return {"write_statistics": [TIME], **parquet_options(schema)}


def _features(columns: dict[str, np.ndarray]) -> pa.Table:
    """Feature columns as required (non-nullable) float32 fields: a missing value is NaN, never null,
    so the file carries no definition levels for them (their encoding was a tenth of the write)."""
    schema = pa.schema([pa.field(name, pa.float32(), nullable=False) for name in columns])
    return pa.Table.from_arrays([pa.array(v) for v in columns.values()], schema=schema)


def _write_wide(head: dict[str, object], columns: dict[str, np.ndarray], path: Path) -> None:
    """features.parquet = head columns + every table's float32 columns, written once."""
    first, features = pa.table(head), _features(columns)
    table = pa.Table.from_arrays(first.columns + features.columns, schema=pa.schema(list(first.schema) +
                                                                                  list(features.schema)))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP, **_wide_options(table.schema))


def _stage_table(columns: dict[str, np.ndarray], path: Path) -> None:
    """A table's temporary file: uncompressed, as it is read back once, right away."""
    with atomic_path(path) as tmp:
        pq.write_table(_features(columns), tmp, row_group_size=ROW_GROUP, compression="none", use_dictionary=False,
                       write_statistics=False)


def _assemble_wide(head: dict[str, object], staged: list[Path], path: Path) -> None:
    """features.parquet from the staged tables, one row group of every column in memory at a time;
    the same file :func:`_write_wide` writes."""
    files = [pq.ParquetFile(f) for f in staged]
    head_table = pa.table(head)
    with atomic_path(path) as tmp:
        writer = None
        for g in range(files[0].num_row_groups):
            part = head_table.slice(g * ROW_GROUP, ROW_GROUP)
            for f in files:
                block = f.read_row_group(g)
                for name in block.column_names:
                    part = part.append_column(block.schema.field(name), block.column(name))  # required, as staged
            if writer is None:
                writer = pq.ParquetWriter(tmp, part.schema, **_wide_options(part.schema))
            writer.write_table(part, row_group_size=ROW_GROUP)
        assert writer is not None
        writer.close()


def extract_pair(bars: pd.DataFrame, pair: str, settings: Settings, out_dir: str | Path,
                 panel: Panel | None = None) -> Extracted:
    """Compute every table, narrow it to float32 without the warm-up rows, then write the wide frame.

    One table is in float64 at a time while computed; the float32 columns of all tables are held until
    the write up to :data:`IN_MEMORY_BYTES` (cheaper than staging them on disk and reading them back),
    and staged per table beyond it."""
    settings = settle_interval(settings, bars)
    catalog = Catalog(settings)
    b, inputs = pair_inputs(bars, settings, pair, panel)
    warm = catalog.warmup_rows()
    if len(b) <= warm:
        raise ValueError(f"pair {pair}: {len(b)} bars after the baseline, need more than the {warm} warm-up rows")
    out = Path(out_dir)
    ts_arrow = pa.array(b["ts_utc"].iloc[warm:].reset_index(drop=True))
    head: dict[str, object] = {"ts_utc": ts_arrow}
    head.update({name: vals[warm:] for name, vals in targets.compute(inputs.idx, settings).items()})
    head.update({name: vals[warm:] for name, vals in targets.evaluation(inputs.idx, settings).items()})
    seconds: dict[str, float] = {}
    columns: dict[str, np.ndarray] = {}
    names: list[str] = []
    staged: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    path = out / FEATURES
    stage = len(ts_arrow) * len(catalog.features) * 4 > IN_MEMORY_BYTES
    with tempfile.TemporaryDirectory(prefix=".tables-", dir=out) as tables:
        t0 = time.perf_counter()
        for key, block in iter_tables(inputs, settings):
            narrow = {feature_column(key, name): np.ascontiguousarray(v[warm:], dtype=np.float32)
                      for name, v in block.items()}
            del block
            seconds[key] = time.perf_counter() - t0
            names += list(narrow)
            if stage:
                staged.append(Path(tables) / f"{key}.parquet")
                _stage_table(narrow, staged[-1])
            else:
                columns.update(narrow)
            del narrow
            t0 = time.perf_counter()
        expected = [f.name for f in catalog.features]
        if names != expected:
            raise AssertionError(f"computed columns differ from the catalog ({len(names)} vs {len(expected)})")
        if stage:
            _assemble_wide(head, staged, path)
        else:
            _write_wide(head, columns, path)
    write_json(online_state(b, inputs, settings), out / ONLINE_STATE)
    return Extracted(path, len(ts_arrow), seconds, interval_s(settings))


def online_state(b: pd.DataFrame, inputs: PairInputs, settings: Settings) -> dict:
    """What the serving engine cannot learn from a short request history: the rate_idx baseline, the bar
    interval, the pairs of the panel the cross-pair tables were computed on and the HMM fit. Selection
    copies it into selection.json, so it ships in model.tar.gz."""
    return {"baseline_ts": pd.Timestamp(b["ts_utc"].iloc[0]).isoformat(), "baseline_close": float(inputs.close[0]),
            "bar_interval_s": interval_s(settings), "pairs": list(inputs.panel.pairs),
            "hmm": hmm_regime.snapshot(inputs.idx, settings.features.hmm_fit_rows)}


def warm_extract(settings: Settings) -> float:
    """Extract a few seeded synthetic days of one pair on a 28-pair panel into a temporary directory and
    return the seconds it took. Numba compiles a function the first time it runs, so this compiles (or
    loads from numba's cache) every numba function extract reaches, the hand-written ones included (the
    HMM fit, sorted windows, spectral windows...), not only the declared kernels: an image that runs it
    at build time ships them compiled, and a process that runs it first hands its tasks warm functions.
    The days cover the longest warm-up of these settings with a day to spare; the sample's own 1-minute
    spacing and first bar as the baseline, so any settings can warm up on it."""
    from bqx.sample import generate

    t0 = time.perf_counter()
    settings = settings.replace(bar_interval_s=60, baseline_date=None)
    bars = generate(days=Catalog(settings).warmup_rows() // 1440 + 2, seed=0)
    panel = build_panel(bars, settings)
    pair = next(iter(bars))
    with tempfile.TemporaryDirectory(prefix="bqx-warm-extract-") as out:
        extract_pair(bars[pair], pair, settings, out, panel)
    return time.perf_counter() - t0


@dataclass(frozen=True)
class ExtractSummary:
    pair: str
    rows: int  # after the warm-up
    features: int
    warmup_rows: int
    bar_interval_s: int


def run(bars_dir: str | Path, pair: str, settings: Settings, out_dir: str | Path,
        panel_dir: str | Path | None = None) -> ExtractSummary:
    """Stage entry: read ``{bars_dir}/{pair}.parquet`` (and ``{panel_dir}/panel.parquet``), extract,
    write under ``out_dir``. The process keeps freed memory for reuse (:mod:`bqx.allocator`)."""
    keep_freed_memory()
    bars = pd.read_parquet(Path(bars_dir) / bars_file(pair))
    panel = load_panel(Path(panel_dir) / PANEL) if panel_dir is not None else None
    catalog = Catalog(settings)
    done = extract_pair(bars, pair, settings, out_dir, panel)
    return ExtractSummary(pair, done.rows, len(catalog.features), catalog.warmup_rows(), done.bar_interval_s)
