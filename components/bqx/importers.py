"""Importers from the formats FX users hold into the canonical bar schema of :mod:`bqx.bars`.

- HistData.com "Generic ASCII" 1-minute CSV: ``YYYYMMDD HHMMSS;open;high;low;close;volume``, no header,
  timestamps in Eastern Standard Time *without* daylight saving (a fixed UTC-05:00).
- OANDA v20 ``GET /v3/instruments/{instrument}/candles`` JSON (granularity M1) with any of the ``mid``,
  ``bid``, ``ask`` price components; times as RFC 3339 or UNIX seconds. Incomplete (still forming)
  candles are dropped. Without ``mid``, OHLC is the bid/ask midpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.bars import BarValidationError, validate_bars
from bqx.pairs import normalise_pair

HISTDATA_UTC_OFFSET = pd.Timedelta(hours=5)  # EST, no DST: UTC = EST + 5 h


def read_histdata(path: str | Path, pair: str | None = None) -> pd.DataFrame:
    """Read a HistData ASCII M1 file; the pair comes from ``pair`` or the file name (DAT_ASCII_EURUSD_M1_2024.csv)."""
    p = Path(path)
    if pair is None:
        tokens = [t for t in p.stem.upper().replace("-", "_").split("_") if len(t) == 6 and t.isalpha()]
        if not tokens:
            raise BarValidationError(p, None, None, None, "cannot tell the pair from the file name; pass pair=")
        pair = tokens[0]
    pair = normalise_pair(pair)
    raw = pd.read_csv(p, sep=";", header=None, names=["ts", "open", "high", "low", "close", "volume"],
                      dtype={"ts": str})
    est = pd.to_datetime(raw["ts"], format="%Y%m%d %H%M%S", errors="coerce")
    bad = np.flatnonzero(est.isna().to_numpy())
    if bad.size:
        value = raw["ts"].iloc[bad[0]]
        raise BarValidationError(p, pair, int(bad[0]), "ts", f"cannot parse HistData timestamp {value!r}")
    frame = raw.drop(columns="ts")
    frame.insert(0, "ts_utc", (est + HISTDATA_UTC_OFFSET).dt.tz_localize("UTC"))
    if (frame["volume"] == 0).all():  # HistData ships zero volume for FX: treat as absent
        frame = frame.drop(columns="volume")
    out = validate_bars(frame, p, pair)
    out.attrs["pair"] = pair
    return out


def _oanda_time(value: str) -> pd.Timestamp:
    text = str(value)
    if text.replace(".", "", 1).isdigit():
        return pd.Timestamp(float(text), unit="s", tz="UTC")
    return pd.Timestamp(text).tz_convert("UTC")


def read_oanda(path: str | Path, pair: str | None = None) -> pd.DataFrame:
    """Read an OANDA v20 candles response saved as JSON."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise BarValidationError(p, pair, None, None, f"not valid JSON: {err}") from err
    instrument = pair or doc.get("instrument")
    if not instrument:
        raise BarValidationError(p, None, None, "instrument", "no instrument in the file; pass pair=")
    pair = normalise_pair(instrument)
    candles = [c for c in doc.get("candles", []) if c.get("complete", True)]
    if not candles:
        raise BarValidationError(p, pair, None, "candles", "no complete candles")
    rows = []
    for i, c in enumerate(candles):
        try:
            quotes = {k: {f: float(c[k][f]) for f in "ohlc"} for k in ("mid", "bid", "ask") if k in c}
            if "mid" not in quotes:
                if not {"bid", "ask"} <= quotes.keys():
                    raise KeyError("mid (or both bid and ask)")
                quotes["mid"] = {f: (quotes["bid"][f] + quotes["ask"][f]) / 2 for f in "ohlc"}
            row = {"ts_utc": _oanda_time(c["time"]), "open": quotes["mid"]["o"], "high": quotes["mid"]["h"],
                   "low": quotes["mid"]["l"], "close": quotes["mid"]["c"], "volume": float(c.get("volume", np.nan))}
        except (KeyError, TypeError, ValueError) as err:
            raise BarValidationError(p, pair, i, "candles", f"malformed candle: {err!r}") from err
        if "bid" in quotes and "ask" in quotes:
            row["bid"], row["ask"] = quotes["bid"]["c"], quotes["ask"]["c"]
        rows.append(row)
    out = validate_bars(pd.DataFrame(rows), p, pair)
    out.attrs["pair"] = pair
    return out
