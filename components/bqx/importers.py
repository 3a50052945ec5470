"""Importers from the formats FX users hold into the canonical bar schema of :mod:`bqx.bars`.

- HistData.com "Generic ASCII" 1-minute CSV: ``YYYYMMDD HHMMSS;open;high;low;close;volume``, no header,
  timestamps in Eastern Standard Time *without* daylight saving (a fixed UTC-05:00).
- OANDA v20 ``GET /v3/instruments/{instrument}/candles`` JSON (granularity M1) with any of the ``mid``,
  ``bid``, ``ask`` price components; times as RFC 3339 or UNIX seconds. Incomplete (still forming)
  candles are dropped. Without ``mid``, OHLC is the bid/ask midpoint.
- Dukascopy's CSV export (JForex / the historical data feed): a header ``Time`` (or ``Gmt time``,
  ``Local time``), ``Open, High, Low, Close, Volume``; times as ``DD.MM.YYYY HH:MM:SS.mmm``, in UTC unless
  the value carries ``GMT+HHMM`` (local-time exports). Any bar interval; one side of the quote (BID or
  ASK, as the file name says) is taken as the price.

The pair comes from ``pair=`` or the first six-letter token of the file name that names a known pair
(``DAT_ASCII_EURUSD_M1_2024.csv``, ``EURUSD_Candlestick_1_Hour_BID_...csv``, ``FOREX_EURUSD_1H_ASK.csv``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.bars import BarValidationError, validate_bars
from bqx.pairs import PAIRS, normalise_pair

HISTDATA_UTC_OFFSET = pd.Timedelta(hours=5)  # EST, no DST: UTC = EST + 5 h


def pair_from_name(path: Path) -> str:
    """The first token of a vendor file name that names one of the 28 pairs."""
    for token in re.split(r"[^A-Za-z0-9]+", path.stem):
        if len(token) == 6 and token.isalpha() and token.lower() in PAIRS:
            return token.lower()
    raise BarValidationError(path, None, None, None, "cannot tell the pair from the file name (no token such as "
                             "EURUSD in it); rename the file or pass pair=")


def read_histdata(path: str | Path, pair: str | None = None) -> pd.DataFrame:
    """Read a HistData ASCII M1 file; the pair comes from ``pair`` or the file name (DAT_ASCII_EURUSD_M1_2024.csv)."""
    p = Path(path)
    pair = normalise_pair(pair) if pair is not None else pair_from_name(p)
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
    try:
        out = validate_bars(frame, p, pair)
    except BarValidationError as err:
        raise err.at_lines(1) from None  # no header: data row 0 is line 1
    out.attrs["pair"] = pair
    return out


DUKASCOPY_TIME_COLUMNS: tuple[str, ...] = ("Time", "Gmt time", "Local time")
_DUKASCOPY_OFFSET = re.compile(r"\s*GMT([+-])(\d{2}):?(\d{2})$")


def is_dukascopy_header(line: str) -> bool:
    fields = [f.strip().strip('"') for f in line.strip().split(",")]
    return len(fields) >= 5 and fields[0] in DUKASCOPY_TIME_COLUMNS and fields[1:5] == ["Open", "High", "Low",
                                                                                           "Close"]


def _dukascopy_times(text: pd.Series) -> pd.Series:
    """``DD.MM.YYYY HH:MM:SS.mmm`` with an optional ``GMT+HHMM`` offset, as UTC (NaT where it does not parse)."""
    offset = text.str.extract(_DUKASCOPY_OFFSET)
    stamp = pd.to_datetime(text.str.replace(_DUKASCOPY_OFFSET, "", regex=True).str.strip(),
                           format="%d.%m.%Y %H:%M:%S.%f", errors="coerce")
    if offset[0].notna().any():
        sign = offset[0].map({"+": 1, "-": -1}).fillna(0).to_numpy()
        minutes = offset[1].astype(float).fillna(0).to_numpy() * 60 + offset[2].astype(float).fillna(0).to_numpy()
        stamp = stamp - pd.to_timedelta(sign * minutes, unit="min")
    return stamp.dt.tz_localize("UTC")


def read_dukascopy(path: str | Path, pair: str | None = None) -> pd.DataFrame:
    """Read a Dukascopy CSV export (header ``Time,Open,High,Low,Close,Volume``)."""
    p = Path(path)
    pair = normalise_pair(pair) if pair is not None else pair_from_name(p)
    raw = pd.read_csv(p, dtype=str, skipinitialspace=True)
    raw.columns = [str(c).strip() for c in raw.columns]
    time_col = next((c for c in DUKASCOPY_TIME_COLUMNS if c in raw.columns), None)
    if time_col is None:
        raise BarValidationError(p, pair, None, "Time", f"no time column (have: {list(raw.columns)})")
    text = raw[time_col].astype("string").str.strip()
    ts = _dukascopy_times(text.fillna(""))
    bad = np.flatnonzero(ts.isna().to_numpy())
    if bad.size:
        shown = raw[time_col].iloc[bad[0]]
        raise BarValidationError(p, pair, int(bad[0]), time_col, f"cannot parse Dukascopy time {shown!r} "
                                 "(expected DD.MM.YYYY HH:MM:SS.mmm)", line=int(bad[0]) + 2)
    frame = pd.DataFrame({"ts_utc": ts})
    for col in ("Open", "High", "Low", "Close", "Volume"):
        if col in raw.columns:
            frame[col.lower()] = raw[col]
    if "volume" in frame and (pd.to_numeric(frame["volume"], errors="coerce") == 0).all():
        frame = frame.drop(columns="volume")
    try:
        out = validate_bars(frame, p, pair)
    except BarValidationError as err:
        raise err.at_lines(2) from None
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
