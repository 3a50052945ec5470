"""The cross-pair panel: every pair on one minute grid, currency strengths, triangle residuals.

The grid is the union of the pairs' bar times. Each pair's close is carried forward (the last known
price, so still causal) and turned into a log price, a one-row log return ``r`` (bps) and the
one-row change of its primary BQX series ``dbqx``. Currency strength (docs/architecture.md, "Formulas"): with
r_AB the return of pair AB, the 8 strengths g solve min sum_AB (r_AB - (g_A - g_B))^2 subject to
sum g = 0; with all 28 pairs this is g_A = (1/8) sum_{B != A} r_AB (sign by orientation). The same
projection of the BQX changes gives the BQX strengths ``gb``. A currency no pair covers is NaN.
Triangle residual of currencies (A, B, C): ln(A/B) + ln(B/C) - ln(A/C), in bps.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.artifacts import PANEL, bars_file
from bqx.config import Settings
from bqx.features import primary
from bqx.pairs import CURRENCIES, PAIRS, split_pair

NAMED_TRIANGLES: tuple[tuple[str, str, str], ...] = (
    ("EUR", "USD", "JPY"), ("GBP", "USD", "JPY"), ("EUR", "GBP", "USD"), ("AUD", "NZD", "USD"),
    ("EUR", "CHF", "USD"), ("USD", "CAD", "JPY"),
)


@dataclass
class Panel:
    ts_ns: np.ndarray  # (n,) grid times, UTC ns
    pairs: tuple[str, ...]
    logp: np.ndarray  # (n, P) carried-forward log close
    r: np.ndarray  # (n, P) one-row log return, bps
    dbqx: np.ndarray  # (n, P) one-row change of the primary BQX series
    g: np.ndarray  # (n, 8) return strength of each currency, bps
    gb: np.ndarray  # (n, 8) BQX-change strength

    def col(self, pair: str) -> int:
        return self.pairs.index(pair)

    def rows_for(self, ts_ns: np.ndarray) -> np.ndarray:
        """Grid rows of the given times (every bar time of a panel pair is on the grid)."""
        rows = np.searchsorted(self.ts_ns, ts_ns)
        if np.any(rows >= len(self.ts_ns)) or np.any(self.ts_ns[np.minimum(rows, len(self.ts_ns) - 1)] != ts_ns):
            raise ValueError("bar times are not on the panel grid: build the panel from the same bars")
        return rows

    def log_cross(self, a: str, b: str) -> np.ndarray:
        """ln(a/b) from whichever pair quotes the two currencies (NaN if it is not in the panel)."""
        name = (a + b).lower()
        if name in self.pairs:
            return self.logp[:, self.col(name)]
        name = (b + a).lower()
        if name in self.pairs:
            return -self.logp[:, self.col(name)]
        return np.full(len(self.ts_ns), np.nan)

    def triangle(self, a: str, b: str, c: str) -> np.ndarray:
        return (self.log_cross(a, b) + self.log_cross(b, c) - self.log_cross(a, c)) * 1e4


def strength_matrix(pairs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(8 x P) projection from pair returns to currency strengths, and which currencies are covered."""
    design = np.zeros((len(pairs), len(CURRENCIES)))
    for i, p in enumerate(pairs):
        base, quote = split_pair(p)
        design[i, CURRENCIES.index(base)] = 1.0
        design[i, CURRENCIES.index(quote)] = -1.0
    covered = np.abs(design).sum(axis=0) > 0
    sub = design[:, covered]
    # least squares with sum(g) = 0 over the covered currencies: pinv of the design plus the constraint row
    aug = np.vstack([sub, np.ones((1, sub.shape[1]))])
    proj = np.linalg.pinv(aug)[:, : len(pairs)]
    # pinv leaves ~1e-17 weights where a pair does not bear on a currency at all: drop them, so a currency
    # whose every pair is stale has a strength of exactly 0 (not 1e-16 noise the window statistics of
    # the cross-pair tables would read as a signal)
    proj[np.abs(proj) < 1e-12] = 0.0
    full = np.full((len(CURRENCIES), len(pairs)), np.nan)
    full[covered] = proj
    return full, covered


def filled_closes(bars: dict[str, pd.DataFrame], pairs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The grid (union of the pairs' bar times) and each pair's close carried forward on it (n x P)."""
    grid = np.unique(np.concatenate([pd.DatetimeIndex(bars[p]["ts_utc"]).asi8 for p in pairs]))
    filled = np.full((len(grid), len(pairs)), np.nan)
    for j, p in enumerate(pairs):
        close = pd.Series(np.nan, index=grid)
        close.iloc[np.searchsorted(grid, pd.DatetimeIndex(bars[p]["ts_utc"]).asi8)] = \
            bars[p]["close"].to_numpy(dtype=np.float64)
        filled[:, j] = close.ffill().to_numpy()
    return grid, filled


def grid_bqx(filled: np.ndarray, settings: Settings) -> np.ndarray:
    """A pair's primary BQX series on the grid, from its carried-forward close indexed to its first."""
    return primary.primary_bqx(primary.rate_idx(filled, filled[np.flatnonzero(np.isfinite(filled))[0]]), settings)


def build_panel(bars: dict[str, pd.DataFrame], settings: Settings) -> Panel:
    pairs = tuple(p for p in PAIRS if p in bars)
    if not pairs:
        raise ValueError("the panel needs at least one pair")
    grid, filled = filled_closes(bars, pairs)
    bqx = np.column_stack([grid_bqx(filled[:, j], settings) for j in range(len(pairs))])
    return panel_from(grid, pairs, filled, bqx)


def panel_from(grid: np.ndarray, pairs: tuple[str, ...], filled: np.ndarray, bqx: np.ndarray) -> Panel:
    """The panel's columns from each pair's carried-forward close and grid BQX series (n x P each)."""
    logp = np.log(filled)
    dbqx = np.full_like(bqx, np.nan)
    dbqx[1:] = np.diff(bqx, axis=0)
    r = np.full_like(logp, np.nan)
    r[1:] = np.diff(logp, axis=0) * 1e4
    proj, covered = strength_matrix(pairs)
    g = r @ np.where(covered[:, None], proj, 0.0).T
    gb = dbqx @ np.where(covered[:, None], proj, 0.0).T
    g[:, ~covered] = np.nan
    gb[:, ~covered] = np.nan
    return Panel(grid, pairs, logp, r, dbqx, g, gb)


def save_panel(panel: Panel, path: str | Path) -> Path:
    from bqx.io import write_parquet

    cols: dict[str, object] = {"ts_utc": pd.DatetimeIndex(panel.ts_ns, tz="UTC")}
    for name, block, labels in (("logp", panel.logp, panel.pairs), ("r", panel.r, panel.pairs),
                                ("dbqx", panel.dbqx, panel.pairs), ("g", panel.g, CURRENCIES),
                                ("gb", panel.gb, CURRENCIES)):
        for j, label in enumerate(labels):
            cols[f"{name}.{label.lower()}"] = block[:, j]
    return write_parquet(pd.DataFrame(cols), path)


def load_panel(path: str | Path) -> Panel:
    """The panel :func:`save_panel` wrote; each column goes from Arrow into its block once (no DataFrame)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pairs = tuple(c.split(".", 1)[1] for c in table.column_names if c.startswith("logp."))

    def block(prefix: str, labels: tuple[str, ...]) -> np.ndarray:
        out = np.empty((table.num_rows, len(labels)), order="F")  # a column per pair or currency, contiguous
        for j, x in enumerate(labels):
            out[:, j] = table.column(f"{prefix}.{x.lower()}").to_numpy()  # nulls (NaN written) back as NaN
        return out

    return Panel(pd.DatetimeIndex(table.column("ts_utc").to_pandas()).asi8, pairs, block("logp", pairs),
                 block("r", pairs), block("dbqx", pairs), block("g", CURRENCIES), block("gb", CURRENCIES))


def all_triangles() -> list[tuple[str, str, str]]:
    return list(combinations(CURRENCIES, 3))


@dataclass(frozen=True)
class PanelSummary:
    rows: int  # grid rows
    pairs: list[str]
    currencies: list[str]  # those with a strength (a pair of theirs is in the panel)


def run(bars_dir: str | Path, pairs: list[str], settings: Settings, out_dir: str | Path) -> PanelSummary:
    """Stage entry: read every pair's bars, build the panel, write ``panel.parquet``."""
    bars = {p: pd.read_parquet(Path(bars_dir) / bars_file(p)) for p in pairs}
    panel = build_panel(bars, settings)
    save_panel(panel, Path(out_dir) / PANEL)
    covered = [c for j, c in enumerate(CURRENCIES) if np.isfinite(panel.g[:, j]).any()]
    return PanelSummary(len(panel.ts_ns), list(panel.pairs), covered)
