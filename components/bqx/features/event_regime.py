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
from numba import njit

from bqx.config import interval_s
from bqx.features import latest as lt
from bqx.features import time_features
from bqx.features.family import Family, Online
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
from bqx.features.time_features import SESSIONS, session_keys

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


def gap_thresholds(interval_s: int) -> tuple[float, float]:
    """(gap, long gap) in ns: a gap is bars further apart than one bar interval; a long gap (a session
    break) further apart than an hour, or than one interval when bars are an hour or longer."""
    return float(interval_s) * 1e9, float(max(3600, interval_s)) * 1e9


def compute(ts_ns: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
            interval_s: int = 60) -> dict[str, np.ndarray]:
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
        keys = session_keys(ts, zone, start)
        first_open = pd.Series(o).groupby(keys).transform("first").to_numpy()
        out[f"ret_since_{name}_open"] = np.log(c / first_open) * 1e4
    gap_ns, long_ns = gap_thresholds(interval_s)
    gap = np.zeros(len(c))
    gap[1:] = np.diff(ts_ns) > gap_ns
    out["gap_return"] = np.where(gap > 0, np.log(o / shift(c, 1)) * 1e4, 0.0)
    out["gap_return"][0] = np.nan
    long_gap = np.ones(len(c), dtype=bool)  # the start of the data counts as a gap
    long_gap[1:] = np.diff(ts_ns) > long_ns
    out["rows_since_gap"] = rows_since(long_gap)
    rng = h - lo
    for w in (60, 240):
        out[f"range_expansion{w}"] = safe_div(rng, rolling_mean(rng, w))
    out["vol_regime"] = safe_div(rolling_std(r, 60), rolling_std(r, 1440))
    out["trend_efficiency240"] = safe_div(np.abs(np.log(c / shift(c, 240))), rolling_sum(np.abs(r), 240))
    day = session_keys(ts, "America/New_York", 17)
    day_high = pd.Series(h).groupby(day).cummax().to_numpy()
    day_low = pd.Series(lo).groupby(day).cummin().to_numpy()
    out["new_day_high"] = (h >= day_high).astype(np.float64)
    out["new_day_low"] = (lo <= day_low).astype(np.float64)
    out["width_ratio60_1440"] = safe_div(rolling_std(c, 60), rolling_std(c, 1440))
    return {k: out[k] for k in NAMES}


# --- online: one row at a time (see bqx.features.latest) ---
SHOCK_RING, SIGN_RING = 240, 60
LONGEST = 1440
# state: rows_since (shock, breakout up 240, breakout down 240, gap), then (key, first open) per
# session, (key, high, low) of the FX day, then rings of the last shock flags and signed flags.
_SESSION0, _DAY, _FLAGS = 4, 10, 13
_SIGNS = _FLAGS + SHOCK_RING
_ROWS = _SIGNS + SIGN_RING  # rows seen: ring positions count rows, not buffer indices
ONLINE_STATE = _ROWS + 1


def online_init(state: np.ndarray) -> None:
    state[:] = np.nan
    state[_ROWS] = 0.0


@njit(cache=True)
def _step(t: int, ts_ns: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
          gap_ns: float, long_ns: float, keys: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    span = min(LONGEST + 1, t + 1)
    r = np.full(LONGEST + 1, np.nan)  # log returns of the last rows, newest last
    for k in range(span):
        r[LONGEST - k] = np.log(c[t - k] / lt.lag(c, t - k, 1))
    last = LONGEST
    z = lt.sdiv(r[last], lt.wstd(r, last - 1, 240, 1))
    flag = np.nan if np.isnan(z) else (1.0 if abs(z) > SHOCK_Z else 0.0)
    n = int(state[_ROWS])
    state[_ROWS] = n + 1
    state[_FLAGS + n % SHOCK_RING] = flag
    state[_SIGNS + n % SIGN_RING] = flag * np.sign(r[last])
    s60 = s240 = sign60 = 0.0
    for k in range(SHOCK_RING):
        f = state[_FLAGS + (n - k) % SHOCK_RING] if n - k >= 0 else np.nan
        s240 += f
        if k < SIGN_RING:
            s60 += f
            sign60 += state[_SIGNS + (n - k) % SIGN_RING] if n - k >= 0 else np.nan
    out[0], out[1], out[2], out[3] = z, flag, s60, s240
    out[4] = lt.rows_since(state, 0, 1.0 if flag == 1.0 else 0.0)
    out[5] = sign60
    j = 6
    for w in (60, 240, 1440):
        old_h, old_l = lt.lag(h, t, w), lt.lag(lo, t, w)
        up = np.nan if np.isnan(old_h) else (1.0 if c[t] > lt.wmax(h, t - 1, w) else 0.0)
        down = np.nan if np.isnan(old_l) else (1.0 if c[t] < lt.wmin(lo, t - 1, w) else 0.0)
        out[j], out[j + 1] = up, down
        j += 2
        if w == 240:
            out[12] = lt.rows_since(state, 1, 1.0 if up == 1.0 else 0.0)
            out[13] = lt.rows_since(state, 2, 1.0 if down == 1.0 else 0.0)
    for s in range(3):  # bps since the open of each session's latest start
        at = _SESSION0 + 2 * s
        if state[at] != keys[s]:
            state[at], state[at + 1] = keys[s], o[t]
        out[14 + s] = np.log(c[t] / state[at + 1]) * 1e4
    gap = (ts_ns[t] - ts_ns[t - 1]) if t >= 1 else 0
    out[17] = (np.log(o[t] / c[t - 1]) * 1e4 if gap > gap_ns else 0.0) if t >= 1 else np.nan
    out[18] = lt.rows_since(state, 3, 1.0 if (t == 0 or gap > long_ns) else 0.0)
    for k, w in enumerate((60, 240)):
        total = 0.0
        for i in range(t - w + 1, t + 1):
            total += h[i] - lo[i] if i >= 0 else np.nan
        out[19 + k] = lt.sdiv(h[t] - lo[t], total / w)
    out[21] = lt.sdiv(lt.wstd(r, last, 60, 1), lt.wstd(r, last, 1440, 1))
    path = 0.0
    for k in range(240):
        path += abs(r[last - k])
    out[22] = lt.sdiv(abs(np.log(c[t] / lt.lag(c, t, 240))), path)
    if state[_DAY] != keys[3]:
        state[_DAY], state[_DAY + 1], state[_DAY + 2] = keys[3], h[t], lo[t]
    state[_DAY + 1], state[_DAY + 2] = max(state[_DAY + 1], h[t]), min(state[_DAY + 2], lo[t])
    out[23] = 1.0 if h[t] >= state[_DAY + 1] else 0.0
    out[24] = 1.0 if lo[t] <= state[_DAY + 2] else 0.0
    out[25] = lt.sdiv(lt.wstd(c, t, 60, 1), lt.wstd(c, t, 1440, 1))
    return ONLINE_STATE


def online_step(t: int, ts_ns: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                gap_ns: float, long_ns: float, state: np.ndarray, out: np.ndarray) -> int:
    keys = time_features.CALENDAR.row(int(ts_ns[t]))[-len(time_features.KEY_STARTS):]
    return _step(t, ts_ns, o, h, lo, c, gap_ns, long_ns, keys, state, out)


TABLES: dict[str, Family] = {
    "event_regime": Family(lambda s: names(),
                           lambda inp, s: compute(inp.ts_ns, inp.open, inp.high, inp.low, inp.close,
                                                               interval_s(s)),
                           lambda s: LONGEST + 1,
                           Online(("ts_ns", "open", "high", "low", "close"), online_step,
                                  lambda s: gap_thresholds(interval_s(s)),
                                  state_size=lambda s: ONLINE_STATE, init=online_init)),
}
