"""``event_regime``: shocks, breakouts, session opens and gaps (26 features).

r = ln(C_t / C_{t-1}); the shock z-score is r over the stdev of the 240 returns before it. The FX day
rolls at 17:00 New York. Features: ``shock_z``, ``shock_flag`` (|z| > 4), ``shocks60``, ``shocks240``,
``rows_since_shock``, ``shock_sign_sum60``; ``breakout_up{W}`` / ``breakout_down{W}`` (W = 60, 240, 1440:
close above the highest high / below the lowest low of the previous W bars); ``rows_since_breakout_up240``
and ``_down240``; ``ret_since_{tokyo,london,ny}_open`` (bps from the open of the session's latest start);
``gap_return`` (ln(O_t / C_{t-1}) in bps when bars are more than a minute apart, else 0),
``rows_since_gap`` (gaps over an hour, or the first bar); ``range_expansion{W}`` (W = 60, 240: the bar's range over its
W-bar mean); ``vol_regime`` sd(r, 60) / sd(r, 1440); ``trend_efficiency240`` |ln(C_t / C_{t-240})| /
sum |r|; ``new_day_high`` / ``new_day_low`` (the bar sets the FX day's high / low so far);
``width_ratio60_1440`` sd(C, 60) / sd(C, 1440).
"""

from __future__ import annotations

import numpy as np

from bqx.config import Settings, interval_s
from bqx.features.family import from_spec
from bqx.features.spec import (
    Table,
    compile_table,
    diff,
    eq,
    finite,
    group_first,
    group_max,
    group_min,
    gt,
    lag,
    log,
    sdiv,
    select,
    series,
    sign,
    since,
    wmax,
    wmean,
    wmin,
    wstd,
    wsum,
)
from bqx.features.time_features import DAY_KEYS, SESSIONS

SHOCK_Z = 4.0


def gap_thresholds(interval_s: int) -> tuple[float, float]:
    """(gap, long gap) in ns: a gap is bars further apart than one bar interval; a long gap (a session
    break) further apart than an hour, or than one interval when bars are an hour or longer."""
    return float(interval_s) * 1e9, float(max(3600, interval_s)) * 1e9


def table(interval: int) -> Table:
    ts, o, h, lo, c = (series(k) for k in ("ts_ns", "open", "high", "low", "close"))
    r = log(c / lag(c, 1))
    z = sdiv(r, lag(wstd(r, 240), 1))
    flag = gt(abs(z), SHOCK_Z)
    t: Table = {"shock_z": z, "shock_flag": flag, "shocks60": wsum(flag, 60), "shocks240": wsum(flag, 240),
                "rows_since_shock": since(eq(flag, 1.0)), "shock_sign_sum60": wsum(flag * sign(r), 60)}
    breakouts = {}
    for w in (60, 240, 1440):  # the close beyond the previous w bars' extreme
        breakouts[w] = gt(c, lag(wmax(h, w), 1)), gt(lag(wmin(lo, w), 1), c)
        t[f"breakout_up{w}"], t[f"breakout_down{w}"] = breakouts[w]
    t["rows_since_breakout_up240"] = since(eq(breakouts[240][0], 1.0))
    t["rows_since_breakout_down240"] = since(eq(breakouts[240][1], 1.0))
    for name in SESSIONS:
        t[f"ret_since_{name}_open"] = log(c / group_first(o, series(f"day_{name}"))) * 1e4
    gap_ns, long_ns = gap_thresholds(interval)
    apart = diff(ts)  # NaN on the first bar
    t["gap_return"] = select(gt(apart, gap_ns), log(o / lag(c, 1)) * 1e4, 0.0)
    t["rows_since_gap"] = since(select(finite(apart), gt(apart, long_ns), 1.0))  # the first bar counts as one
    rng = h - lo
    for w in (60, 240):
        t[f"range_expansion{w}"] = sdiv(rng, wmean(rng, w))
    t["vol_regime"] = sdiv(wstd(r, 60), wstd(r, 1440))
    t["trend_efficiency240"] = sdiv(abs(log(c / lag(c, 240))), wsum(abs(r), 240))
    day = series(DAY_KEYS[-1])
    t["new_day_high"] = eq(h, group_max(h, day))
    t["new_day_low"] = eq(lo, group_min(lo, day))
    t["width_ratio60_1440"] = sdiv(wstd(c, 60), wstd(c, 1440))
    return t


def _table(s: Settings) -> Table:
    return table(interval_s(s))


TABLES = {"event_regime": from_spec(_table)}


def names() -> list[str]:
    return list(table(60))


def compute(ts_ns: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
            interval_s: int = 60) -> dict[str, np.ndarray]:
    from bqx.features.time_features import day_keys

    inputs = {"ts_ns": ts_ns, "open": o, "high": h, "low": lo, "close": c, **day_keys(ts_ns)}
    return compile_table(table(interval_s)).batch(inputs)
