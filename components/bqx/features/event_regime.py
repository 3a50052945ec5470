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
import pandas as pd

from bqx.features.rolling import (
    keep_nan,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
    rolling_sum,
    rows_since,
    safe_div,
    shift,
)
from bqx.features.time_features import SESSIONS

SHOCK_Z = 4.0
NAMES: tuple[str, ...] = (
    "shock_z", "shock_flag", "shocks60", "shocks240", "rows_since_shock", "shock_sign_sum60",
    "breakout_up60", "breakout_down60", "breakout_up240", "breakout_down240", "breakout_up1440",
    "breakout_down1440", "rows_since_breakout_up240", "rows_since_breakout_down240",
    "ret_since_tokyo_open", "ret_since_london_open", "ret_since_ny_open", "gap_return", "rows_since_gap",
    "range_expansion60", "range_expansion240", "vol_regime", "trend_efficiency240", "new_day_high",
    "new_day_low", "width_ratio60_1440",
)


def names() -> list[str]:
    return list(NAMES)


def _session_keys(ts: pd.DatetimeIndex, zone: str, start_hour: int) -> np.ndarray:
    local = ts.tz_convert(zone).tz_localize(None)
    return ((local - pd.Timedelta(hours=start_hour)).floor("D")).asi8


def compute(ts_ns: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    ts = pd.DatetimeIndex(ts_ns.astype("datetime64[ns]"), tz="UTC")
    r = np.log(c / shift(c, 1))
    z = safe_div(r, shift(rolling_std(r, 240), 1))
    flag = keep_nan((np.abs(z) > SHOCK_Z).astype(np.float64), z)
    out: dict[str, np.ndarray] = {"shock_z": z, "shock_flag": flag, "shocks60": rolling_sum(flag, 60),
                                  "shocks240": rolling_sum(flag, 240)}
    out["rows_since_shock"] = rows_since(flag == 1)
    out["shock_sign_sum60"] = rolling_sum(flag * np.sign(r), 60)
    for w in (60, 240, 1440):
        up = keep_nan((c > shift(rolling_max(h, w), 1)).astype(np.float64), shift(h, w))
        down = keep_nan((c < shift(rolling_min(lo, w), 1)).astype(np.float64), shift(lo, w))
        out[f"breakout_up{w}"], out[f"breakout_down{w}"] = up, down
        if w == 240:
            out["rows_since_breakout_up240"] = rows_since(up == 1)
            out["rows_since_breakout_down240"] = rows_since(down == 1)
    for name, (zone, start, _end) in SESSIONS.items():
        keys = _session_keys(ts, zone, start)
        first_open = pd.Series(o).groupby(keys).transform("first").to_numpy()
        out[f"ret_since_{name}_open"] = np.log(c / first_open) * 1e4
    gap = np.zeros(len(c))
    gap[1:] = np.diff(ts_ns) > 60e9
    out["gap_return"] = np.where(gap > 0, np.log(o / shift(c, 1)) * 1e4, 0.0)
    out["gap_return"][0] = np.nan
    long_gap = np.ones(len(c), dtype=bool)  # the start of the data counts as a gap
    long_gap[1:] = np.diff(ts_ns) > 3600e9
    out["rows_since_gap"] = rows_since(long_gap)
    rng = h - lo
    for w in (60, 240):
        out[f"range_expansion{w}"] = safe_div(rng, rolling_mean(rng, w))
    out["vol_regime"] = safe_div(rolling_std(r, 60), rolling_std(r, 1440))
    out["trend_efficiency240"] = safe_div(np.abs(np.log(c / shift(c, 240))), rolling_sum(np.abs(r), 240))
    day = _session_keys(ts, "America/New_York", 17)
    day_high = pd.Series(h).groupby(day).cummax().to_numpy()
    day_low = pd.Series(lo).groupby(day).cummin().to_numpy()
    out["new_day_high"] = (h >= day_high).astype(np.float64)
    out["new_day_low"] = (lo <= day_low).astype(np.float64)
    out["width_ratio60_1440"] = safe_div(rolling_std(c, 60), rolling_std(c, 1440))
    return {k: out[k] for k in NAMES}
