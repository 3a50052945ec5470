"""The cost a stage's progress line ends with: the figures bench/pipeline.py reads back."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bqx import progress


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="task age comes from /proc")
def test_cost_line_reads_back_and_counts_the_subprocesses_a_task_waited_for() -> None:
    progress.work_started()
    before = progress.cpu_seconds()
    child = subprocess.run([sys.executable, "-c", "import time\nx = 0\nfor i in range(3_000_000): x += i\n"
                            "print(time.process_time())"], capture_output=True, text=True, check=True)
    after = progress.cpu_seconds()
    assert after - before >= float(child.stdout)  # the child's own processor time, as it measured it
    line = f"[bqx] train   eurusd  done{progress.cost()}"
    m = progress.COST.search(line)
    assert m is not None, line
    assert float(m["cpu"]) >= round(before, 1)
    assert float(m["task"]) >= float(m["work"]) and float(m["peak"]) > 0
