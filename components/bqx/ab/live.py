"""The live error of each variant of an A/B test: what each answered, against what then happened.

The served predictions come from the prediction log or the endpoint's Data Capture (each answer names
its variant); the realised target of a bar is computed from the bars that followed it, with the model's
own target definition and rate_idx baseline, so it is the value the model was trained to predict. A
bar whose target lies beyond the last bar given has none yet and is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bqx.ab import CANDIDATE, CURRENT
from bqx.model_package import LoadedModel, feature_settings

if TYPE_CHECKING:
    from bqx.ab.decide import Decision
    from bqx.ab.endpoint import Finished
    from bqx.config import Settings


def realized_target(bars: pd.DataFrame, model: LoadedModel) -> pd.Series:
    """The model's target at each bar (NaN where it is not known yet), indexed by ``ts_utc``."""
    from bqx.features import primary
    from bqx.targets import compute

    settings, snapshot = feature_settings(model.selection)
    close = bars["close"].to_numpy(np.float64)
    base = (snapshot or {}).get("baseline_close")
    idx = primary.rate_idx(close, close[0] if base is None else float(base))
    column = model.selection["target"]
    values = compute(idx, settings)
    if column not in values:
        raise ValueError(f"model of {model.selection.get('pair')}: its target {column} is not one of its settings' "
                         f"horizons ({', '.join(values)})")
    return pd.Series(values[column], index=pd.DatetimeIndex(bars["ts_utc"]), name="target")


def live_rows(served: pd.DataFrame, bars: dict[str, pd.DataFrame],
              models: dict[tuple[str, str], LoadedModel]) -> pd.DataFrame:
    """Rows of (ts_utc, pair, variant, prediction, target) for every served A/B answer of a pair with bars;
    both sides of a pair must predict the same target, or their errors would not compare."""
    frames = []
    for pair, rows in served[served["variant"].isin([CURRENT, CANDIDATE])].groupby("pair"):
        if pair not in bars:
            raise FileNotFoundError(f"pair {pair}: answers were served but no bars were given to score them")
        sides = {v: models[(pair, v)] for v in (CURRENT, CANDIDATE)}
        wanted = {v: m.selection["target"] for v, m in sides.items()}
        if len(set(wanted.values())) != 1:
            raise ValueError(f"pair {pair}: the variants predict different targets ({wanted}); their errors "
                             "do not compare")
        truth = realized_target(bars[pair], sides[CURRENT])
        frames.append(rows.assign(target=truth.reindex(pd.DatetimeIndex(rows["ts_utc"])).to_numpy()))
    if not frames:
        return pd.DataFrame(columns=["ts_utc", "pair", "prediction", "variant", "target"])
    return pd.concat(frames, ignore_index=True)


def side_models(repository: str | Path, manifest: dict, into: str | Path) -> dict[tuple[str, str], LoadedModel]:
    """Each pair's model on each side of the running test, from the repository's versioned files."""
    from bqx.locations import model_file, repository_file
    from bqx.model_package import load_tarball

    ab = manifest["ab"]
    return {(pair, side): load_tarball(repository_file(repository, model_file(entry), into))
            for side in (CURRENT, CANDIDATE) for pair, entry in ab[side].items()}


def judge(repository: str | Path, served_at: str | Path, bars_source: str | Path, settings: Settings,
          now: pd.Timestamp | None = None) -> tuple[dict, Decision]:
    """The running test's manifest section and its verdict (:func:`bqx.ab.decide.decide` with the
    ``registry.ab_*`` settings) on what was served and the bars since."""
    import tempfile

    from bqx.ab.decide import decide
    from bqx.ingest import load_pairs
    from bqx.locations import read_manifest, served_rows

    manifest = read_manifest(repository)
    ab = manifest.get("ab")
    if not ab:
        raise ValueError(f"{repository}: no A/B test is running (its manifest.json has no 'ab' section)")
    r = settings.registry
    with tempfile.TemporaryDirectory(prefix="bqx-ab-") as tmp:
        models = side_models(repository, manifest, tmp)
    served = served_rows(served_at)
    started = pd.Timestamp(ab["started"])
    served = served[served["ts_utc"] >= started]
    live = live_rows(served, load_pairs(bars_source), models)
    verdict = decide(live, started, now if now is not None else pd.Timestamp.now(tz="UTC"), r.ab_policy,
                     r.ab_alpha, r.ab_window_h, r.ab_min_hours)
    return ab, verdict


def review(repository: str | Path, served_at: str | Path, bars_source: str | Path, settings: Settings,
           apply: bool = False, now: pd.Timestamp | None = None) -> tuple[dict, Decision, Finished | None]:
    """:func:`judge`, and with ``apply`` carry out a promote or rollback verdict on the endpoint; returns the
    test's manifest section, the verdict and what :func:`bqx.ab.endpoint.finish_ab` did (None if nothing)."""
    ab, verdict = judge(repository, served_at, bars_source, settings, now)
    finished = None
    if apply and verdict.action != "wait":
        from bqx.ab.endpoint import finish_ab

        finished = finish_ab(settings, verdict.action, verdict.why)
    return ab, verdict, finished
