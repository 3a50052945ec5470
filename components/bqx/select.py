"""Quota-aware feature selection: rank candidates by importance, then enforce per-domain minimums.

Importances alone do not balance domains (one run picked 26 idx / 224 bqx), so the quota is explicit:
take the ``min_idx`` best idx and ``min_bqx`` best bqx candidates, then fill to ``n_select`` by global
rank. Ties break by name, so the same importances always give the same selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.artifacts import FEATURES, LAG_PLAN, ONLINE_STATE, SELECTION, SPLIT_NAMES, SPLITS
from bqx.catalog import DOMAINS, Catalog
from bqx.columns import TIME, target_column
from bqx.config import Settings
from bqx.dataset import feature_matrix
from bqx.targets import evaluation_columns


@dataclass(frozen=True)
class Quota:
    n_select: int
    min_idx: int
    min_bqx: int


def effective_quota(available: dict[str, int], settings: Settings) -> Quota:
    """The configured quota, scaled to what exists: never more than the candidates of a domain, and the
    two minimums shrunk proportionally when they exceed the total that can be selected."""
    n = min(settings.selection.n_select, sum(available.values()))
    mi = min(settings.selection.min_idx, available.get("idx", 0))
    mb = min(settings.selection.min_bqx, available.get("bqx", 0))
    if mi + mb > n:
        scale = n / (mi + mb)
        mi, mb = int(mi * scale), int(mb * scale)
    return Quota(n, mi, mb)


def enforce_quota(importance: dict[str, float], domains: dict[str, str], quota: Quota) -> list[str]:
    """Deterministic selection: domain minimums first, then the best of the rest; ordered by importance."""
    ranked = sorted(importance, key=lambda c: (-importance[c], c))
    chosen: list[str] = []
    taken: set[str] = set()
    for domain, need in (("idx", quota.min_idx), ("bqx", quota.min_bqx)):
        picks = [c for c in ranked if domains[c] == domain][:need]
        chosen += picks
        taken.update(picks)
    for c in ranked:
        if len(chosen) >= quota.n_select:
            break
        if c not in taken:
            chosen.append(c)
            taken.add(c)
    return sorted(chosen, key=lambda c: (-importance[c], c))


def importance_catboost(x: np.ndarray, y: np.ndarray, names: list[str], seed: int, threads: int,
                        rsm: float) -> dict[str, float]:
    """PredictionValuesChange importances of a small CatBoost model (fast, handles NaN natively) fitted
    on ``x`` (rows x ``names``, ideally column-major float32, which CatBoost reads without converting);
    each split scores a random ``rsm`` share of the columns."""
    from catboost import CatBoostRegressor

    model = CatBoostRegressor(iterations=80, depth=5, learning_rate=0.15, border_count=32, rsm=rsm,
                              random_seed=seed, thread_count=threads, verbose=False, allow_writing_files=False)
    model.fit(x, y)
    return dict(zip(names, (float(v) for v in model.get_feature_importance()), strict=True))


def select(sample: pd.DataFrame, settings: Settings) -> dict:
    """Select features from a sample of training rows (candidates + target); returns ``selection.json``."""
    candidates = [c for c in sample.columns if "." in c]  # features are {table}.{name}; the rest is bookkeeping
    return select_matrix(feature_matrix([sample], candidates), sample[settings.features.target_name].to_numpy(),
                         candidates, settings)


def select_matrix(x: np.ndarray, y: np.ndarray, candidates: list[str], settings: Settings) -> dict:
    """Select features from sampled training rows: ``x`` the candidates (rows x ``candidates``,
    column-major float32), ``y`` the target; returns ``selection.json``. At most ``selection.sample_rows``
    of the rows are used, drawn with the selection seed (all of them when there are no more)."""
    catalog = Catalog(settings)
    target = settings.features.target_name
    domains = {c: catalog.domain_of(c) for c in candidates}
    available = {d: sum(1 for c in candidates if domains[c] == d) for d in DOMAINS}
    quota = effective_quota(available, settings)
    rng = np.random.default_rng(settings.selection.seed)
    n = min(settings.selection.sample_rows, len(y))
    rows = np.sort(rng.choice(len(y), size=n, replace=False))
    if n < len(y):  # all rows otherwise (the draw is then every row in order): no copy
        x, y = np.asfortranarray(x[rows]), y[rows]
    importance = importance_catboost(x, np.asarray(y), candidates, settings.selection.seed,
                                     settings.selection.thread_count, settings.selection.rsm)
    chosen = enforce_quota(importance, domains, quota)
    return {
        "features": chosen,
        "target": target,
        "domain_counts": {d: sum(1 for c in chosen if domains[c] == d) for d in DOMAINS},
        "candidates": len(candidates),
        "available_by_domain": available,
        "quota": {"n_select": quota.n_select, "min_idx": quota.min_idx, "min_bqx": quota.min_bqx},
        "importance": {c: importance[c] for c in chosen},
        "sample_rows": n,
        "seed": settings.selection.seed,
        "settings": settings.to_dict(),
        "catalog_version": catalog.version(),
        "settings_hash": settings.settings_hash(),
    }


@dataclass(frozen=True)
class SelectSummary:
    """The select stage's outcome: ``selection.json`` as written, with its figures by name."""

    pair: str
    selection: dict

    @property
    def features(self) -> list[str]:  # the chosen, in order
        return self.selection["features"]

    @property
    def domain_counts(self) -> dict[str, int]:
        return self.selection["domain_counts"]

    @property
    def candidates(self) -> int:
        return self.selection["candidates"]

    @property
    def rows(self) -> dict[str, int]:  # per split
        return self.selection["rows"]


def run(candidates_dir: str | Path, features_dir: str | Path, pair: str, settings: Settings,
        out_dir: str | Path) -> SelectSummary:
    """Stage entry: build every candidate on the lag stage's training-row sample, select, and write
    ``selection.json``: the chosen columns of the features and each split's rows (:mod:`bqx.dataset`),
    the bookkeeping columns being the time, every configured horizon's target (the first is the
    training target) and the evaluation columns. No feature value is copied."""
    import pyarrow.parquet as pq

    from bqx.dataset import define
    from bqx.io import read_json, write_json
    from bqx.lag import sample_block

    cdir = Path(candidates_dir)
    splits = read_json(cdir / SPLITS)
    fpath = Path(features_dir) / FEATURES
    columns = read_json(cdir / LAG_PLAN)["columns"]
    target_name = settings.features.target_name
    target = pq.read_table(fpath, columns=[target_name]).column(0).to_numpy()
    sampled = np.asarray(splits["sample_rows"], dtype=np.int64)
    result = select_matrix(sample_block(fpath, columns, sampled), target[sampled], columns, settings)
    result["pair"] = pair
    f = settings.features
    head = [TIME, *(target_column(f.target_window, h) for h in f.horizons), *evaluation_columns(settings)]
    bounds = {name: splits[name] for name in SPLIT_NAMES}
    result["rows"] = {name: int((~np.isnan(target[lo:hi])).sum()) for name, (lo, hi) in bounds.items()}
    state = Path(features_dir) / ONLINE_STATE
    if state.exists():  # the serving engine's baseline and HMM fit travel with the model
        result["online_state"] = read_json(state)
    result = define(result, head, bounds)
    write_json(result, Path(out_dir) / SELECTION)
    return SelectSummary(pair, result)
