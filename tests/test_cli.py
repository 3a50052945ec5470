import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.cli import main


def test_sample_data_validate_and_plan(tmp_path: Path, capsys):
    assert main(["sample-data", "--out", str(tmp_path / "b"), "--pairs", "EUR/USD,usdjpy", "--days", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["eurusd.parquet", "usdjpy.parquet"]
    assert main(["validate", str(tmp_path / "b")]) == 0
    assert "eurusd: 4,320 bars of 1 min" in capsys.readouterr().out
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "base features: 1,080 (idx 273, bqx 301, cross 506)" in out and "candidates: 2,640" in out
    assert ">= 100 idx and >= 100 bqx" in out
    assert "\n  extract features\n" in out and "\n  drift   features, splits, drift, aws, registry\n" in out


def test_validate_reports_bad_file_as_one_clear_error(tmp_path: Path):
    main(["sample-data", "--out", str(tmp_path), "--pairs", "gbpusd", "--days", "1", "--format", "csv"])
    path = tmp_path / "gbpusd.csv"
    df = pd.read_csv(path)
    df.loc[7, "high"] = df.loc[7, "low"] / 2
    df.to_csv(path, index=False)
    proc = subprocess.run([sys.executable, "-m", "bqx.cli", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"bqx validate: error: invalid bars: file {path}, pair gbpusd, data row 7 "
                                   "(file line 9), "
                                   f"field 'high': high < low (open={df.loc[7, 'open']}, high={df.loc[7, 'high']}, "
                                   f"low={df.loc[7, 'low']}, close={df.loc[7, 'close']})")
    assert np.isfinite(df["close"]).all()


def test_plan_sizes_and_instance_come_from_catalog_and_price_file(tmp_path: Path):
    from bqx.config import Settings
    from bqx.plan import GIB, ROWS_PER_PAIR_YEAR, load_prices, plan_text, recommend, sizes

    s = Settings()
    sz = sizes(s)
    assert sz.features == ROWS_PER_PAIR_YEAR * (8 + 8 + 1080 * 4)
    assert sz.candidates == ROWS_PER_PAIR_YEAR * (8 + 2640 * 4)
    prices = load_prices()
    assert all(p.usd_per_hour > 0 and p.as_of for p in prices)
    pick = recommend(5 * GIB, prices)
    assert pick is not None and pick.memory_gib * GIB >= 7.5 * GIB
    assert pick.usd_per_hour == min(p.usd_per_hour for p in prices if p.memory_gib >= 7.5)
    own = tmp_path / "prices.csv"
    own.write_text("eu-west-1,ml.x.big,64,512,9.99,2026-11,my quote\n")
    text = plan_text(s, str(own))
    assert "ml.x.big" in text and "$9.99/h in eu-west-1" in text and "candidates: 2,640" in text
    assert sizes(s.replace(profile="base")).features < sz.features


def test_a_command_without_its_extra_says_which_to_install(tmp_path: Path):
    """As installed without the kfp extra (the import hidden): one line naming the extra, no traceback."""
    code = ("import sys, importlib.abc\n"
            "class Hide(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] == 'kfp':\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Hide())\n"
            "from bqx.cli import main\n"
            "sys.exit(main(['compile', '--out', sys.argv[1]]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.yaml")], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == ("bqx compile: error: this needs 'kfp', which is in the 'kfp' extra: "
                                   "pip install 'bqx-ml[kfp]' (or 'bqx-ml[all]')")


def test_run_refuses_image_options_without_the_docker_runner_and_an_engine_that_is_not_there(tmp_path: Path,
                                                                                            monkeypatch, capsys):
    assert main(["run", "--local", "--tag", "x", "--out", str(tmp_path)]) == 1
    assert "--registry and --tag choose the images of --runner docker" in capsys.readouterr().err
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    assert main(["run", "--local", "--runner", "docker", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bqx run: error: no container engine answers at unix://{tmp_path}/none.sock")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_run_the_disk_cannot_hold_is_refused_before_it_starts(tmp_path: Path, capsys):
    """bqx plan's disk need against what is free where --out lives; one line, nothing written."""
    import shutil

    from bqx.config import Settings
    from bqx.plan import disk_bytes

    free = shutil.disk_usage(tmp_path).free
    days = int(free / disk_bytes(Settings(), rows=1440, n_pairs=28)) + 1000  # more trading days than fit
    assert main(["run", "--local", "--pairs", "all", "--days", str(days), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("bqx run: error: this run needs about ") and "GiB are free there" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_the_run_log_takes_lines_from_many_task_threads_whole(tmp_path: Path):
    """kfp.local's ParallelFor tasks print from threads into one log: every line arrives whole and
    once, and every progress line reaches the terminal."""
    import io
    import threading
    import time

    from bqx.kubeflow.local_run import PROGRESS_MARK, _ProgressTee

    term = io.StringIO()
    with open(tmp_path / "run.log", "w") as log:
        tee = _ProgressTee(log, term, time.perf_counter())

        def task(k: int) -> None:
            for i in range(3000):
                tee.write(f"task {k} line {i} " + "x" * (i % 50) + "\n")
                if i % 500 == 0:
                    tee.write(f"{PROGRESS_MARK} stage{k} pair {i}\n")

        threads = [threading.Thread(target=task, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = (tmp_path / "run.log").read_bytes().decode().splitlines()  # strict: no stray bytes
    want = {f"task {k} line {i} " + "x" * (i % 50) for k in range(6) for i in range(3000)}
    assert sorted(x for x in lines if x.startswith("task ")) == sorted(want)
    assert term.getvalue().count(" pair ") == 6 * 6
