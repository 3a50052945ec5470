import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bqx.bars import BarValidationError, read_bars, validate_bars
from bqx.importers import read_histdata, read_oanda
from bqx.ingest import ingest, load_pairs
from bqx.sample import write_sample


def _corrupt(path: Path, mutate) -> None:
    df = pd.read_parquet(path)
    mutate(df)
    df.to_parquet(path, index=False)


@pytest.mark.parametrize(
    ("mutate", "row", "field", "words"),
    [
        (lambda df: df.__setitem__("close", df["close"].where(df.index != 17, np.nan)), 17, "close", "finite"),
        (lambda df: df.__setitem__("ts_utc", df["ts_utc"].where(df.index != 40, df["ts_utc"].iloc[39])), 40,
         "ts_utc", "duplicate"),
        (lambda df: df.__setitem__("high", df["high"].where(df.index != 5, df["low"].iloc[5] * 0.999)), 5, "high",
         "high < low"),
        (lambda df: df.__setitem__("open", df["open"].where(df.index != 9, -1.0)), 9, "open", "> 0"),
        (lambda df: df.__setitem__("ts_utc", df["ts_utc"].where(df.index != 30, df["ts_utc"].iloc[10])), 30,
         "ts_utc", "earlier"),
    ],
)
def test_bad_file_error_names_file_pair_row_field(sample_dir: Path, mutate, row, field, words):
    path = sample_dir / "eurusd.parquet"
    _corrupt(path, mutate)
    with pytest.raises(BarValidationError) as info:
        read_bars(path)
    err = info.value
    assert (err.file, err.pair, err.row, err.field) == (str(path), "eurusd", row, field)
    assert str(path) in str(err) and f"data row {row}," in str(err) and field in str(err) and words in str(err)


def test_csv_rows_and_timezones(tmp_path: Path):
    write_sample(tmp_path, ["usdjpy"], days=1, fmt="csv")
    bars = read_bars(tmp_path / "usdjpy.csv")
    assert str(bars["ts_utc"].dtype) == "datetime64[ns, UTC]" and len(bars) == 1440
    text = (tmp_path / "usdjpy.csv").read_text().replace("T00:03:00Z", "T00:03:00", 1)
    (tmp_path / "usdjpy.csv").write_text(text)
    with pytest.raises(BarValidationError, match=r"data row 3 \(file line 5\), field 'ts_utc'.*no UTC offset"):
        read_bars(tmp_path / "usdjpy.csv")


def test_unknown_pair_and_missing_column(tmp_path: Path):
    df = pd.DataFrame({"ts_utc": pd.date_range("2024-07-01", periods=3, freq="min", tz="UTC"),
                       "open": 1.0, "high": 1.0, "low": 1.0})
    df.to_parquet(tmp_path / "xauusd.parquet")
    with pytest.raises(BarValidationError, match="xauusd.*known pair"):
        read_bars(tmp_path / "xauusd.parquet")
    with pytest.raises(BarValidationError, match="field 'close'.*missing"):
        validate_bars(df, "f.parquet", "eurusd")


def test_ingest_publishes_nothing_when_one_pair_is_bad(sample_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    ingest(sample_dir, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_sample(sample_dir, ["eurusd", "gbpusd"], days=1, seed=99)  # new data for both pairs
    _corrupt(sample_dir / "gbpusd.parquet", lambda df: df.__setitem__("low", df["high"] * 1.01))
    with pytest.raises(BarValidationError, match="gbpusd"):
        ingest(sample_dir, out)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # eurusd was valid but not published: all or nothing


def test_histdata_import_converts_est_to_utc(tmp_path: Path):
    lines = ["20240701 000000;1.071230;1.071300;1.071200;1.071250;0",
             "20240701 000100;1.071250;1.071400;1.071240;1.071390;0"]
    path = tmp_path / "DAT_ASCII_EURUSD_M1_2024.csv"
    path.write_text("\n".join(lines) + "\n")
    bars = read_histdata(path)
    assert bars.attrs["pair"] == "eurusd"
    assert bars["ts_utc"].iloc[0] == pd.Timestamp("2024-07-01 05:00", tz="UTC")  # EST = UTC-5, no DST
    assert "volume" not in bars.columns  # HistData's zero volume is dropped
    # and the ingest stage recognises the format by sniffing
    loaded = load_pairs(tmp_path)
    assert list(loaded) == ["eurusd"] and len(loaded["eurusd"]) == 2


def test_oanda_import_mid_bid_ask_and_incomplete(tmp_path: Path):
    def candle(t, c, complete=True):
        q = {"o": str(c), "h": str(c + 0.001), "l": str(c - 0.001), "c": str(c)}
        b = {k: str(float(v) - 0.0001) for k, v in q.items()}
        a = {k: str(float(v) + 0.0001) for k, v in q.items()}
        return {"complete": complete, "volume": 12, "time": t, "mid": q, "bid": b, "ask": a}

    doc = {"instrument": "GBP_USD", "granularity": "M1",
           "candles": [candle("2024-07-01T00:00:00.000000000Z", 1.27), candle("2024-07-01T00:01:00.000000000Z", 1.271),
                       candle("2024-07-01T00:02:00.000000000Z", 1.272, complete=False)]}
    path = tmp_path / "oanda.json"
    path.write_text(json.dumps(doc))
    bars = read_oanda(path)
    assert bars.attrs["pair"] == "gbpusd" and len(bars) == 2
    assert bars["bid"].iloc[1] == pytest.approx(1.2709) and bars["ask"].iloc[1] == pytest.approx(1.2711)
    doc["candles"][0]["mid"]["h"] = "1.0"  # high below low
    path.write_text(json.dumps(doc))
    with pytest.raises(BarValidationError, match=r"pair gbpusd, data row 0, field 'high'"):
        read_oanda(path)
