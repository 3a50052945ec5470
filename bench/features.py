"""Feature extraction for one pair x one year of 1-minute bars (~372k rows), all computed tables.

A first subprocess generates the 28-pair sample year and writes the pair's bars and the cross-pair
panel; this process then measures extraction the way the extract stage does it (its bars plus the
panel), so its peak RSS is the stage's. Prints wall time per table and in all, peak RSS and, for a
representative subset (rolling mean/std/max/min, RSI, MACD), the speed ratio against a plain-pandas
reference measured in this run. Run it on one core with ``taskset -c 0 python bench/features.py``.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bqx.allocator import keep_freed_memory
from bqx.catalog import Catalog
from bqx.config import Settings
from bqx.extract import extract_pair, pair_inputs
from bqx.features import rolling as R
from bqx.features.registry import compile_declared
from bqx.features.spec import compile_table, series
from bqx.features.technical import rsi
from bqx.sample import generate

WINDOWS = (14, 20, 50, 60, 100)


def subset_ours(x: np.ndarray) -> list[np.ndarray]:
    out = []
    for w in WINDOWS:
        out += [R.rolling_mean(x, w), R.rolling_std(x, w), R.rolling_max(x, w), R.rolling_min(x, w)]
    out.append(compile_table({"rsi": rsi(series("x"), 14)}).batch({"x": x})["rsi"])
    out.append(R.ema(x, 12) - R.ema(x, 26))
    return out


def subset_pandas(x: np.ndarray) -> list[np.ndarray]:
    s = pd.Series(x)
    out = []
    for w in WINDOWS:
        r = s.rolling(w)
        out += [r.mean().to_numpy(), r.std().to_numpy(), r.max().to_numpy(), r.min().to_numpy()]
    d = s.diff()
    up = d.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    down = (-d).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    out.append((100 * up / (up + down)).to_numpy())
    out.append((s.ewm(span=12, adjust=False).mean() - s.ewm(span=26, adjust=False).mean()).to_numpy())
    return out


def talib_technical(x: np.ndarray, h: np.ndarray, lo: np.ndarray) -> dict[str, np.ndarray]:
    """The 56 indicators of technical_idx computed with TA-Lib's C functions (the same definitions where
    TA-Lib has them; compositions of its primitives where it has not), the reference the table is timed
    against."""
    import talib as ta

    out: dict[str, np.ndarray] = {}
    for n in (7, 14, 21, 28):
        out[f"rsi_{n}"] = ta.RSI(x, n)
    for a, b, c in ((12, 26, 9), (5, 35, 5)):
        out[f"macd_{a}_{b}_{c}"], out[f"macd_signal_{a}_{b}_{c}"], out[f"macd_hist_{a}_{b}_{c}"] = ta.MACD(x, a, b, c)
    for n in (14, 28, 56):
        out[f"stoch_k_{n}"], out[f"stoch_d_{n}"] = ta.STOCHF(h, lo, x, fastk_period=n, fastd_period=3)
    for n in (20, 40):
        out[f"cci_{n}"] = ta.CCI(h, lo, x, n)
    for n in (14, 28):
        out[f"willr_{n}"] = ta.WILLR(h, lo, x, n)
    for n in (5, 10, 20, 60):
        out[f"roc_{n}"] = ta.MOM(x, n)
    for n in (14, 28):
        out[f"atr_{n}"] = ta.ATR(h, lo, x, n)
        out[f"adx_{n}"], out[f"plus_di_{n}"], out[f"minus_di_{n}"] = (ta.ADX(h, lo, x, n), ta.PLUS_DI(h, lo, x, n),
                                                                       ta.MINUS_DI(h, lo, x, n))
    for n in (10, 20, 50, 100):
        out[f"ema_dist_{n}"] = x - ta.EMA(x, n)
        out[f"sma_dist_{n}"] = x - ta.SMA(x, n)
    for n in (10, 30):
        out[f"mom_{n}"] = ta.MOM(x, n)
    out["trix_15"] = ta.TRIX(x, 15)
    for n in (20, 60):
        out[f"zscore_{n}"] = (x - ta.SMA(x, n)) / ta.STDDEV(x, n)
    out["aroon_down_25"], out["aroon_up_25"] = ta.AROON(x, x, 25)
    out["aroon_osc_25"] = ta.AROONOSC(x, x, 25)
    out["dpo_20"] = x - np.roll(ta.SMA(x, 20), 11)
    out["cmo_14"] = ta.CMO(x, 14)
    out["ppo_12_26"] = ta.PPO(x, 12, 26, matype=1)
    out["er_10"] = np.abs(ta.MOM(x, 10)) / ta.SUM(np.abs(ta.MOM(x, 1)), 10)
    up, mid, low = ta.BBANDS(x, 20, 2, 2)
    out["bb_pctb_20"], out["bb_width_20"] = (x - low) / (up - low), up - low
    hi20, lo20 = ta.MAX(x, 20), ta.MIN(x, 20)
    out["donchian_pos_20"] = (x - lo20) / (hi20 - lo20)
    out["ema_slope_20"] = ta.MOM(ta.EMA(x, 20), 1)
    return out


def best_of(fn, repeat: int = 3) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


DAYS = 259  # trading days x 1,440 = 372,960 rows


def prepare(out: Path) -> None:
    from bqx.panel import build_panel, save_panel

    settings = Settings()
    bars = generate(days=DAYS, seed=1)
    t0 = time.perf_counter()
    panel = build_panel(bars, settings)
    print(f"panel build (28 pairs): {time.perf_counter() - t0:.2f} s")
    save_panel(panel, out / "panel.parquet")
    bars["eurusd"].to_parquet(out / "eurusd.parquet")


def main() -> None:
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, __file__, "--prepare", tmp], check=True)
        from bqx.panel import load_panel

        bars = pd.read_parquet(Path(tmp) / "eurusd.parquet")
        panel = load_panel(Path(tmp) / "panel.parquet")
    print(f"rows: {len(bars)} rows")
    t0 = time.perf_counter()
    list(compile_declared(settings))  # numba's cache: compiled once per machine, loaded here (not timed below)
    print(f"declared kernels load time: {time.perf_counter() - t0:.2f} s")
    keep_freed_memory()  # as the stage's entry (bqx.extract.run) does
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = extract_pair(bars, "eurusd", settings, out, panel)  # the extract stage's work, files included
        wall = time.perf_counter() - t0
        n_features = pq.ParquetFile(result.path).schema_arrow.names
        stored = result.path.stat().st_size / (result.rows * 4 * sum("." in n for n in n_features))
    for key, secs in sorted(result.table_seconds.items(), key=lambda kv: -kv[1]):
        print(f"table {key}: {secs:.2f} s")
    print(f"computed features: {sum('.' in n for n in n_features)} features")
    print(f"catalog base features: {Catalog(settings).counts()['base']} features")
    print(f"extract wall time (compute + Parquet): {wall:.2f} s")
    print(f"compute time: {sum(result.table_seconds.values()):.2f} s")
    print(f"extract time per feature: {1000 * wall / len(Catalog(settings).features):.2f} ms")
    print(f"features.parquet bytes per raw float32 byte: {stored:.3f} ratio")  # bqx.plan.STORED_FRACTION
    _, inputs = pair_inputs(bars, settings, "eurusd", panel)
    x = inputs.idx
    subset_ours(x[:500])  # load the rsi kernel
    t0 = time.perf_counter()
    ours = subset_ours(x)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = subset_pandas(x)
    t_pd = time.perf_counter() - t0
    worst = max(float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))) for a, b in zip(ours, ref, strict=True))
    print(f"subset bqx time: {t_ours:.3f} s")
    print(f"subset pandas time: {t_pd:.3f} s")
    print(f"subset speed ratio (pandas / bqx): {t_pd / t_ours:.2f} x")
    print(f"subset max relative difference: {worst:.2e} ratio")
    from numpy.lib.stride_tricks import sliding_window_view

    direct = sliding_window_view(x, 14).std(axis=1, ddof=1)
    for name, values in (("bqx", R.rolling_std(x, 14)), ("pandas", pd.Series(x).rolling(14).std().to_numpy())):
        err = float(np.max(np.abs(values[13:] - direct) / direct))
        print(f"rolling std(14) max relative error vs two-pass, {name}: {err:.2e} ratio")
    from bqx.features import technical

    tech = technical.compute(inputs.idx, inputs.idx_high, inputs.idx_low)  # loads the kernel
    ref_tech = talib_technical(inputs.idx, inputs.idx_high, inputs.idx_low)
    assert sorted(tech) == sorted(ref_tech) and len(tech) == 56, sorted(set(tech) ^ set(ref_tech))
    t_bqx = best_of(lambda: technical.compute(inputs.idx, inputs.idx_high, inputs.idx_low))
    t_talib = best_of(lambda: talib_technical(inputs.idx, inputs.idx_high, inputs.idx_low))
    print(f"technical bqx time (56 indicators): {t_bqx:.3f} s")
    print(f"technical TA-Lib time (56 indicators): {t_talib:.3f} s")
    print(f"technical time ratio (bqx / TA-Lib): {t_bqx / t_talib:.2f} x")
    print(f"extract wall time: {wall:.2f} s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--prepare":
        prepare(Path(sys.argv[2]))
    else:
        main()
