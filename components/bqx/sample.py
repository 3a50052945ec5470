"""Seeded synthetic 1-minute bars for the 28 pairs, built from 8 simulated currency value series.

Each currency's log value follows a random walk at sub-minute ticks with stochastic volatility and a
trading-session profile (Tokyo, London, New York); pair AB is exp(v_A - v_B), so every triangle
(AB * BC = AC) holds exactly by construction. The market is shut from Friday 22:00 to Sunday 22:00 UTC
and reopens with a gap. Volume is a tick count that follows volatility; bid/ask straddle the close.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bqx.io import write_parquet
from bqx.pairs import CURRENCIES, PAIRS, split_pair

# Approximate USD value of one unit of each currency (sets realistic price levels).
USD_VALUE: dict[str, float] = {
    "EUR": 1.08, "GBP": 1.27, "AUD": 0.66, "NZD": 0.60, "USD": 1.0, "CAD": 1 / 1.36, "CHF": 1 / 0.88, "JPY": 1 / 150.0,
}
# Per-minute log-volatility of each currency against an abstract numeraire (about 6-9% a year).
MINUTE_VOL: dict[str, float] = {
    "EUR": 7.0e-5, "GBP": 8.0e-5, "AUD": 9.0e-5, "NZD": 9.5e-5,
    "USD": 6.0e-5, "CAD": 7.0e-5, "CHF": 7.5e-5, "JPY": 8.5e-5,
}
TICKS_PER_MINUTE = 6


def trading_minutes(start: str, days: int) -> pd.DatetimeIndex:
    """``days`` x 1,440 open-market minutes from ``start`` (UTC), skipping the Fri 22:00 - Sun 22:00 close."""
    t0 = pd.Timestamp(start)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    need = days * 1440
    span = pd.date_range(t0, periods=need * 7 // 5 + 3 * 1440, freq="min")
    dow, hour = span.dayofweek, span.hour
    closed = ((dow == 4) & (hour >= 22)) | (dow == 5) | ((dow == 6) & (hour < 22))
    return span[~closed][:need]


def session_profile(ts: pd.DatetimeIndex) -> np.ndarray:
    """Relative activity by UTC hour: quiet late NY, Tokyo, busy London and the London/NY overlap."""
    hour = ts.hour.to_numpy()
    prof = np.full(hour.shape, 0.55)
    prof[(hour >= 0) & (hour < 7)] = 0.75  # Tokyo
    prof[(hour >= 7) & (hour < 12)] = 1.25  # London
    prof[(hour >= 12) & (hour < 16)] = 1.5  # London / New York overlap
    prof[(hour >= 16) & (hour < 21)] = 1.0  # New York
    return prof


def ar1(shocks: np.ndarray, phi: float, block: int = 256) -> np.ndarray:
    """y_t = phi y_(t-1) + e_t from y_(-1) = 0, vectorised in blocks (numpy only, so the serving image can
    make sample bars without scipy): within a block y_j = phi^j (c phi + sum_(k<=j) e_k phi^-k), c the
    last value of the block before, and phi^-k stays small for k < block."""
    out = np.empty(len(shocks))
    powers = phi ** np.arange(block, dtype=np.float64)
    carry = 0.0
    for start in range(0, len(shocks), block):
        e = shocks[start:start + block]
        p = powers[: len(e)]
        out[start:start + len(e)] = p * (carry * phi + np.cumsum(e / p))
        carry = out[start + len(e) - 1]
    return out


def simulate_currencies(ts: pd.DatetimeIndex, seed: int) -> dict[str, np.ndarray]:
    """Log value paths of the 8 currencies at tick resolution, shape (minutes, TICKS_PER_MINUTE + 1).

    Column 0 is the minute's open, the last column its close (= next minute's open).
    """
    rng = np.random.default_rng(seed)
    n = len(ts)
    prof = session_profile(ts)
    gap = np.zeros(n)
    gap[1:] = (np.diff(ts.asi8) > 60_000_000_000).astype(float)  # first minute after a weekend
    paths: dict[str, np.ndarray] = {}
    for cur in CURRENCIES:
        # Stochastic volatility: AR(1) log-vol with a half-life of about two hours.
        phi = 0.5 ** (1 / 120)
        shocks = rng.standard_normal(n) * 0.08
        logvol = ar1(shocks, phi)
        sigma = MINUTE_VOL[cur] * prof * np.exp(logvol - logvol.std() ** 2 / 2)
        steps = rng.standard_normal((n, TICKS_PER_MINUTE)) * (sigma / np.sqrt(TICKS_PER_MINUTE))[:, None]
        steps[:, 0] += gap * rng.standard_normal(n) * MINUTE_VOL[cur] * 25  # weekend reopening gap
        level = np.log(USD_VALUE[cur]) + np.cumsum(steps.ravel()).reshape(n, TICKS_PER_MINUTE)
        opens = np.concatenate([[np.log(USD_VALUE[cur])], level[:-1, -1]])
        paths[cur] = np.column_stack([opens, level])
    return paths


def pair_bars(pair: str, ts: pd.DatetimeIndex, paths: dict[str, np.ndarray], seed: int) -> pd.DataFrame:
    """OHLC, tick volume and bid/ask of one pair from the currency paths."""
    base, quote = split_pair(pair)
    logp = paths[base] - paths[quote]
    price = np.exp(logp)
    rng = np.random.default_rng([seed, PAIRS.index(pair)])
    moves = np.abs(np.diff(logp, axis=1)).sum(axis=1)
    volume = rng.poisson(20 + moves / 2e-5).astype(np.float64)
    close = price[:, -1]
    majors = {"EUR", "USD", "JPY", "GBP"}
    half_spread = close * (0.4e-4 if base in majors and quote in majors else 0.9e-4) * rng.uniform(0.8, 1.6, len(ts))
    return pd.DataFrame(
        {
            "ts_utc": ts,
            "open": price[:, 0],
            "high": price.max(axis=1),
            "low": price.min(axis=1),
            "close": close,
            "volume": volume,
            "bid": close - half_spread,
            "ask": close + half_spread,
        }
    )


def generate(pairs: tuple[str, ...] | list[str] = PAIRS, days: int = 10, start: str = "2024-07-01",
             seed: int = 42) -> dict[str, pd.DataFrame]:
    """Bars for ``pairs`` over ``days`` trading days. The same seed gives the same bars for every pair
    regardless of which pairs are asked for (the currency paths do not depend on ``pairs``)."""
    ts = trading_minutes(start, days)
    paths = simulate_currencies(ts, seed)
    return {p: pair_bars(p, ts, paths, seed) for p in pairs}


def write_sample(out_dir: str | Path, pairs: tuple[str, ...] | list[str] = PAIRS, days: int = 10,
                 start: str = "2024-07-01", seed: int = 42, fmt: str = "parquet") -> list[Path]:
    """Write one bar file per pair into ``out_dir`` (Parquet or CSV); returns the paths written."""
    out = Path(out_dir)
    written = []
    for pair, df in generate(pairs, days, start, seed).items():
        path = out / f"{pair}.{fmt}"
        if fmt == "parquet":
            write_parquet(df, path)
        elif fmt == "csv":
            from bqx.io import write_text

            frame = df.assign(ts_utc=df["ts_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
            write_text(frame.to_csv(index=False), path)
        else:
            raise ValueError(f"unknown format {fmt!r} (parquet or csv)")
        written.append(path)
    return written
