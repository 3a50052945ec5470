"""``time_features``: calendar and trading-session encodings of the bar time (20 features).

Cyclical encodings (sin, cos) of hour, minute of day, day of week, day of month and month (UTC); flags
for the Tokyo (09:00-18:00 Asia/Tokyo), London (08:00-17:00 Europe/London) and New York (08:00-17:00
America/New_York) sessions and the London/New York overlap, daylight saving included; minutes since
each session last opened; minutes since the weekly open (Sunday 17:00 New York) and to the weekly
close (Friday 17:00 New York); ``gap_minutes``: minutes since the previous bar beyond one bar interval
(0 for consecutive bars of any interval).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bqx.config import interval_s
from bqx.features.family import Family, Online

SESSIONS: dict[str, tuple[str, int, int]] = {
    "tokyo": ("Asia/Tokyo", 9, 18), "london": ("Europe/London", 8, 17), "ny": ("America/New_York", 8, 17),
}
NAMES: tuple[str, ...] = (
    "hour_sin", "hour_cos", "minute_of_day_sin", "minute_of_day_cos", "dow_sin", "dow_cos", "dom_sin", "dom_cos",
    "month_sin", "month_cos", "session_tokyo", "session_london", "session_ny", "session_overlap_london_ny",
    "mins_since_tokyo_open", "mins_since_london_open", "mins_since_ny_open", "mins_since_week_open",
    "mins_to_week_close", "gap_minutes",
)


def names() -> list[str]:
    return list(NAMES)


def session_keys(ts: pd.DatetimeIndex, zone: str, start_hour: int) -> np.ndarray:
    """Per bar, the local calendar day of the latest session start (``start_hour`` in ``zone``), as ns."""
    local = ts.tz_convert(zone).tz_localize(None)
    return ((local - pd.Timedelta(hours=start_hour)).floor("D")).asi8


def _cyc(values: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    ang = 2 * np.pi * values / period
    return np.sin(ang), np.cos(ang)


def compute(ts_ns: np.ndarray, interval_s: int = 60) -> dict[str, np.ndarray]:
    ts = pd.DatetimeIndex(ts_ns.astype("datetime64[ns]"), tz="UTC")
    out: dict[str, np.ndarray] = {}
    minute = (ts.hour * 60 + ts.minute).to_numpy(dtype=np.float64)
    out["hour_sin"], out["hour_cos"] = _cyc(ts.hour.to_numpy(dtype=np.float64), 24)
    out["minute_of_day_sin"], out["minute_of_day_cos"] = _cyc(minute, 1440)
    out["dow_sin"], out["dow_cos"] = _cyc(ts.dayofweek.to_numpy(dtype=np.float64), 7)
    out["dom_sin"], out["dom_cos"] = _cyc(ts.day.to_numpy(dtype=np.float64) - 1, 31)
    out["month_sin"], out["month_cos"] = _cyc(ts.month.to_numpy(dtype=np.float64) - 1, 12)
    since: dict[str, np.ndarray] = {}
    for name, (zone, start, end) in SESSIONS.items():
        local = ts.tz_convert(zone)
        local_min = (local.hour * 60 + local.minute).to_numpy(dtype=np.float64)
        out[f"session_{name}"] = ((local_min >= start * 60) & (local_min < end * 60)).astype(np.float64)
        since[name] = np.mod(local_min - start * 60, 1440)
    out["session_overlap_london_ny"] = out["session_london"] * out["session_ny"]
    for name in SESSIONS:
        out[f"mins_since_{name}_open"] = since[name]
    ny = ts.tz_convert("America/New_York")
    ny_week_min = (ny.dayofweek * 1440 + ny.hour * 60 + ny.minute).to_numpy(dtype=np.float64)
    week_open = 6 * 1440 + 17 * 60  # Sunday 17:00 New York
    week_close = 4 * 1440 + 17 * 60  # Friday 17:00 New York
    out["mins_since_week_open"] = np.mod(ny_week_min - week_open, 7 * 1440)
    out["mins_to_week_close"] = np.mod(week_close - ny_week_min, 7 * 1440)
    gap = np.full(len(ts_ns), np.nan)
    gap[1:] = (np.diff(ts_ns) - interval_s * 1e9) / 60e9
    out["gap_minutes"] = gap
    return {k: out[k] for k in NAMES}


# --- online: the calendar depends on the bar time alone, so it is computed a day of minutes at a time ---
MINUTE_NS = 60_000_000_000
KEY_STARTS: tuple[tuple[str, int], ...] = (*((zone, start) for zone, start, _ in SESSIONS.values()),
                                           ("America/New_York", 17))  # session opens, then the FX day
DAY_KEYS: tuple[str, ...] = (*(f"day_{name}" for name in SESSIONS), "day_fx")  # their input series' names


def day_keys(ts_ns: np.ndarray) -> dict[str, np.ndarray]:
    """Per bar, each session's (and the FX day's) key: the local day of its latest start, in ns."""
    ts = pd.DatetimeIndex(np.asarray(ts_ns, dtype=np.int64).astype("datetime64[ns]"), tz="UTC")
    return {name: session_keys(ts, zone, hour).astype(np.float64)
            for name, (zone, hour) in zip(DAY_KEYS, KEY_STARTS, strict=True)}


def calendar(ts_ns: np.ndarray) -> np.ndarray:
    """(n, 19 + 4): every feature but ``gap_minutes``, then the session-open and FX-day keys."""
    block = compute(np.asarray(ts_ns, dtype=np.int64))
    cols = [block[k] for k in NAMES[:-1]] + list(day_keys(ts_ns).values())
    return np.column_stack(cols)


class Calendar:
    """Calendar rows by bar time, computed for a day of minutes at once (one pandas pass per day)."""

    BLOCK = 1440

    def __init__(self) -> None:
        self._block: tuple[int, np.ndarray] = (0, np.empty((0, len(NAMES) - 1 + len(KEY_STARTS))))

    def row(self, ts_ns: int) -> np.ndarray:
        if ts_ns % MINUTE_NS:
            return calendar(np.array([ts_ns]))[0]
        start, table = self._block
        k = (ts_ns - start) // MINUTE_NS
        if not 0 <= k < len(table):
            start = ts_ns
            table = calendar(start + MINUTE_NS * np.arange(self.BLOCK, dtype=np.int64))
            self._block = (start, table)  # one assignment: threads see an old or a new block, never half
            k = 0
        return table[k]


CALENDAR = Calendar()


def online_step(t: int, ts_ns: np.ndarray, interval_ns: float, state: np.ndarray, out: np.ndarray) -> int:
    out[:-1] = CALENDAR.row(int(ts_ns[t]))[: len(NAMES) - 1]
    out[-1] = (ts_ns[t] - ts_ns[t - 1] - interval_ns) / 60e9 if t >= 1 else np.nan
    return 0


TABLES: dict[str, Family] = {
    "time_features": Family(lambda s: names(),
                            lambda inp, s: compute(inp.ts_ns, interval_s(s)),
                            lambda s: 1, Online(("ts_ns",), online_step,
                                                lambda s: (float(interval_s(s)) * 1e9,))),
}
