"""Batch prediction: every bar of a span of bars, for every pair of a model repository, with the features
serving computes.

The features come from the batch engine (``bqx.extract``'s families) set up as the serving engine is
for the model: the package's settings, its rate_idx baseline close, its HMM fit and the pairs of its
panel (``bqx.model_package.feature_settings``). So a row's prediction is the one a server seeded with
the same bars would give at that bar, for every bar from the first at which serving answers (the
longest table warm-up plus the longest lag); earlier bars are warm-up only. Only the tables a model
reads are computed, and each panel is built once for all the pairs that share it.

Backends: ``local`` predicts in this process; ``sagemaker`` sends each pair's rows to a Batch
Transform job on the serving image (:mod:`bqx.predict.transform`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.columns import lag_of, parse
from bqx.config import Settings
from bqx.io import write_parquet
from bqx.model_package import LoadedModel, feature_settings, load_tarball
from bqx.panel import Panel, build_panel


@dataclass(frozen=True)
class PairPrediction:
    pair: str
    target_model: str  # the repository file the predictions come from
    rows: int  # predicted bars
    warmup: int  # bars read as history only
    first: str
    last: str
    seconds: float


@dataclass(frozen=True)
class PredictSummary:
    path: Path
    pairs: list[PairPrediction]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pairs)


def warmup_rows(model: LoadedModel, settings: Settings, snapshot: dict | None) -> int:
    """Bars of history before serving answers for this model (as the server's raw-bars plan counts)."""
    from bqx.serving.engine import tables_for, tail_length

    max_lag = max(lag_of(f) for f in model.features)
    return max(tail_length(t, settings, snapshot) for t in tables_for(model.features)) + max_lag + 1


def model_features(model: LoadedModel, bars: dict[str, pd.DataFrame], pair: str,
                   panel_for: Callable[[tuple[str, ...], Settings], Panel]) -> tuple[np.ndarray, np.ndarray, int]:
    """(bar times ns, float32 feature matrix in the model's column order, warm-up rows) for every bar."""
    from bqx.extract import pair_inputs
    from bqx.features.registry import FAMILIES
    from bqx.lag import lagged_block
    from bqx.serving.engine import tables_for

    settings, snapshot = feature_settings(model.selection)
    snapshot = snapshot or {}
    missing = [p for p in settings.features.pairs if p not in bars]
    if missing:
        raise ValueError(f"{pair}: its model's cross-pair features were computed on a panel of "
                         f"{', '.join(settings.features.pairs)}; no bars for {', '.join(missing)}")
    panel = panel_for(tuple(settings.features.pairs), settings)
    base = snapshot.get("baseline_close")
    _, inputs = pair_inputs(bars[pair], settings, pair, panel, base_close=None if base is None else float(base))
    inputs = replace(inputs, hmm_fit=snapshot.get("hmm"))
    wanted: dict[str, set[str]] = {}
    for f in model.features:
        c = parse(f)
        wanted.setdefault(c.table, set()).add(c.base)
    columns: dict[str, np.ndarray] = {}
    for table in tables_for(model.features):
        computed = FAMILIES[table].compute(inputs, settings)
        for name in wanted[table]:
            columns[name] = np.asarray(computed[name.split(".", 1)[1]], dtype=np.float32)
    rows = np.arange(len(inputs.ts_ns))
    x = lagged_block(columns, rows, model.features)
    return inputs.ts_ns, x, warmup_rows(model, settings, snapshot or None)


BACKENDS = ("local", "sagemaker")


def run(bars_source: str | Path, models_repo: str | Path, out: str | Path, pairs: Iterable[str] | None = None,
        since: str | None = None, progress: Callable[[str, str], None] = lambda pair, text: None,
        backend: str = "local", settings: Settings | None = None,
        sleep: Callable[[float], None] = time.sleep) -> PredictSummary:
    """Predict every bar of ``bars_source`` (from ``since`` on) for every pair of the repository (or
    ``pairs``); both may be local or ``s3://``. One Parquet file of (ts_utc, pair, prediction,
    target_model), written whole or not at all. ``backend`` sagemaker sends each pair's rows to a Batch
    Transform job (``settings.aws`` says where); all jobs are submitted before any is waited on."""
    import tempfile

    from bqx.ingest import load_pairs
    from bqx.locations import model_tarball, repository_pairs
    from bqx.pairs import check_pair

    if backend not in BACKENDS:
        raise ValueError(f"unknown predict backend {backend!r} ({', '.join(BACKENDS)})")
    if backend == "sagemaker":
        from bqx.aws import require
        from bqx.predict import transform

        if settings is None:
            raise ValueError("the sagemaker predict backend needs settings with the aws section")
        require(settings, "bucket", "role_arn", "serve_image")
    t0 = time.perf_counter()
    served = repository_pairs(models_repo)
    chosen = list(pairs) if pairs is not None else served
    for p in chosen:
        check_pair(p)
        if p not in served:
            raise ValueError(f"pair {p}: no model in {models_repo} (it has {', '.join(served) or 'none'})")
    start_ns = pd.Timestamp(since, tz="UTC").value if since else None
    bars = load_pairs(bars_source)
    panels: dict[tuple, Panel] = {}

    def panel_for(panel_pairs: tuple[str, ...], settings: Settings) -> Panel:
        key = (panel_pairs, settings.to_json(("features",)))
        if key not in panels:
            panels[key] = build_panel({p: bars[p] for p in panel_pairs}, settings)
        return panels[key]

    pending: list[tuple[PairPrediction, np.ndarray, Callable[[], np.ndarray]]] = []
    with tempfile.TemporaryDirectory(prefix="bqx-predict-") as tmp:
        for pair in chosen:
            t1 = time.perf_counter()
            if pair not in bars:
                raise FileNotFoundError(f"no bar file for pair {pair} in {bars_source}")
            tarball = model_tarball(models_repo, pair, tmp)
            model = load_tarball(tarball)
            ts, x, warm = model_features(model, bars, pair, panel_for)
            keep = np.arange(len(ts)) >= warm - 1  # serving answers once it holds `warm` bars
            if start_ns is not None:
                keep &= ts >= start_ns
            rows, times = x[keep], ts[keep]
            if not len(rows):
                predicted: Callable[[], np.ndarray] = lambda: np.zeros(0)  # noqa: E731
            elif backend == "local":
                pred = np.asarray(model.predict(rows), dtype=np.float64)
                predicted = lambda pred=pred: pred  # noqa: E731
            else:
                job = transform.submit(pair, rows, tarball, models_repo, settings, sleep)  # type: ignore[arg-type]
                predicted = lambda job=job: transform.collect(job, settings, sleep)  # type: ignore[arg-type,misc]  # noqa: E731
                progress(pair, f"{len(rows):,} rows sent to transform job {job.job}")
            first, last = (str(pd.Timestamp(times[i], tz="UTC")) if len(times) else "" for i in (0, -1))
            done = PairPrediction(pair, tarball.name, len(rows), int(min(warm - 1, len(ts))), first, last,
                                  time.perf_counter() - t1)
            pending.append((done, times, predicted))
            if backend == "local":
                progress(pair, f"{len(rows):,} bars predicted ({done.seconds:.1f} s)")
    frames, summaries = [], []
    for done, times, predicted in pending:
        t1 = time.perf_counter()
        pred = predicted()
        frames.append(pd.DataFrame({"ts_utc": pd.to_datetime(times, utc=True), "pair": done.pair, "prediction": pred,
                                    "target_model": done.target_model}))
        if backend != "local":
            done = replace(done, seconds=done.seconds + time.perf_counter() - t1)
            progress(done.pair, f"{done.rows:,} bars predicted by Batch Transform ({done.seconds:.1f} s)")
        summaries.append(done)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"ts_utc": pd.Series(dtype="datetime64[ns, UTC]"), "pair": [], "prediction": [], "target_model": []})
    path = write_parquet(table, out)
    return PredictSummary(Path(path), summaries, time.perf_counter() - t0)
