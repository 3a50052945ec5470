"""Whether the candidate goes live: its live error against the current variant's, on the same hours.

Both variants answer requests drawn at random from the same stream, so in any hour they face the same
market. The test pairs them by hour: for each hour in which both answered, ``d`` is the candidate's
mean squared error minus the current variant's (all pairs pooled). Hours are close to independent
(the target looks minutes ahead), where single minutes are not (overlapping horizons), so the mean of
``d`` is judged with a one-sample t test on hours, not on rows.

The test is fixed-horizon: the verdict comes when ``registry.ab_window_h`` hours have passed since the
test started (and at least ``registry.ab_min_hours`` paired hours exist). Policy ``metrics`` promotes
only a candidate significantly better (one-sided, ``registry.ab_alpha``) and otherwise keeps the
current one; policy ``window`` promotes at the window's end unless the candidate is significantly
worse. Before the end the only verdict is an early rollback of a candidate that is worse at
``ab_alpha / hours`` (a Bonferroni bound over hourly looks), so checking often does not inflate the
false-alarm rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bqx.ab import CANDIDATE, CURRENT

POLICIES = ("metrics", "window")


@dataclass(frozen=True)
class VariantLive:
    variant: str
    rows: int
    rmse: float


@dataclass(frozen=True)
class Decision:
    action: str  # promote | rollback | wait
    why: str
    hours: int  # hours in which both variants answered
    mean_diff: float  # candidate MSE minus current MSE, mean over those hours (negative: candidate better)
    p_better: float  # one-sided p-value of "the candidate is no better"
    p_worse: float  # one-sided p-value of "the candidate is no worse"
    variants: tuple[VariantLive, ...]


def hourly_mse(live: pd.DataFrame) -> pd.DataFrame:
    """Per UTC hour, each variant's mean squared error: rows of (ts_utc, variant, prediction, target)
    in, a frame indexed by hour with a column per variant (NaN where a variant did not answer) out."""
    return _squared_errors(live).groupby([live["ts_utc"].dt.floor("h"), live["variant"]]).mean().unstack("variant")


def _squared_errors(live: pd.DataFrame) -> pd.Series:
    return (live["prediction"].astype(float) - live["target"].astype(float)) ** 2


def _t_sf(t: float, df: int) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t as student

    return float(student.sf(t, df))


# A test still short of paired hours at this many windows ends, keeping the current models: deploys are
# held while a test runs (bqx.ab.endpoint.start_ab), so every test must end.
GIVE_UP = 2.0


def decide(live: pd.DataFrame, started: pd.Timestamp, now: pd.Timestamp, policy: str = "metrics",
           alpha: float = 0.05, window_h: float = 72.0, min_hours: int = 24) -> Decision:
    """The verdict on rows of (ts_utc, variant, prediction, target) with a known target, for a test
    that started at ``started``."""
    if policy not in POLICIES:
        raise ValueError(f"settings field 'registry.ab_policy': one of {', '.join(POLICIES)}, got {policy!r}")
    live = live[live["target"].notna() & live["variant"].isin([CURRENT, CANDIDATE])]
    per_variant = _squared_errors(live).groupby(live["variant"]).agg(["size", "mean"])
    variants = tuple(VariantLive(v, int(per_variant["size"].get(v, 0)), float(np.sqrt(per_variant["mean"][v]))
                                 if v in per_variant.index else math.nan) for v in (CURRENT, CANDIDATE))
    by_hour = hourly_mse(live) if len(live) else pd.DataFrame(columns=[CURRENT, CANDIDATE])
    both = by_hour.reindex(columns=[CURRENT, CANDIDATE]).dropna()
    d = (both[CANDIDATE] - both[CURRENT]).to_numpy(float)
    n = len(d)
    elapsed_h = (now - started) / pd.Timedelta(hours=1)
    if n >= 2 and np.std(d, ddof=1) > 0:
        t = float(np.mean(d) / (np.std(d, ddof=1) / math.sqrt(n)))
        p_better, p_worse = _t_sf(-t, n - 1), _t_sf(t, n - 1)
    else:
        p_better = p_worse = 1.0
    mean_diff = float(np.mean(d)) if n else math.nan
    verdict = (f"{n} paired hours, candidate MSE minus current {mean_diff:+.4g} per hour "
               f"(p better {p_better:.3g}, p worse {p_worse:.3g})")

    def made(action: str, why: str) -> Decision:
        return Decision(action, f"{why}: {verdict}", n, mean_diff, p_better, p_worse, variants)

    if n >= min_hours and p_worse < alpha / n:
        return made("rollback", f"the candidate is worse beyond doubt (p < {alpha}/{n})")
    if elapsed_h < window_h:
        return made("wait", f"{elapsed_h:.1f} of {window_h:g} hours of the test have passed")
    if n < min_hours:
        if elapsed_h >= GIVE_UP * window_h:  # a test that cannot gather answers must not hold deploys forever
            return made("rollback", f"after {elapsed_h:.0f} hours ({GIVE_UP:g} x the window) only {n} of the "
                        f"{min_hours} paired hours needed exist: the current models stay")
        return made("wait", f"the window has passed but only {n} of the {min_hours} paired hours needed exist "
                    f"(the test ends with the current models at {GIVE_UP:g} x the window)")
    if policy == "metrics":
        if p_better < alpha:
            return made("promote", f"the candidate is better (one-sided p < {alpha})")
        return made("rollback", f"the candidate did not prove better within {window_h:g} hours (policy metrics)")
    if p_worse < alpha:
        return made("rollback", f"the candidate is worse (one-sided p < {alpha})")
    return made("promote", f"the {window_h:g}-hour window has passed and the candidate is not worse (policy window)")
