import numpy as np
import pandas as pd
import pytest

from bqx.config import Settings
from bqx.drift import run_drift

IDX = ["reg_idx.w60_r2", "reg_idx.w90_rmse", "technical_idx.rsi_14", "technical_idx.cci_20"]
BQX = ["bqx.w15_bqx_return", "bqx.w30_bqx_max", "technical_bqx.rsi_14", "reg_bqx.w60_r2"]


def _frames(shift_domain: str):
    rng = np.random.default_rng(4)
    ref = pd.DataFrame(rng.standard_normal((2000, 8)), columns=IDX + BQX)
    cur = pd.DataFrame(rng.standard_normal((2000, 8)), columns=IDX + BQX)
    cur[IDX if shift_domain == "idx" else BQX] += 1.5
    return ref, cur


@pytest.mark.parametrize(("shifted", "still"), [("bqx", "idx"), ("idx", "bqx")])
def test_drift_in_one_domain_is_flagged_there_only(shifted, still, tmp_path):
    ref, cur = _frames(shifted)
    out = run_drift(ref, cur, IDX + BQX, Settings(), tmp_path / "r.html")
    d = out["domains"]
    assert d[shifted]["share"] == 1.0 and d[shifted]["status"] == "critical"
    assert d[still]["share"] == 0.0 and d[still]["status"] == "ok"
    assert {d["idx"]["title"], d["bqx"]["title"]} == {"rate_idx", "BQX"}
    html = (tmp_path / "r.html").read_text()
    assert "<h2>rate_idx features</h2>" in html and "<h2>BQX features</h2>" in html
    assert "bqx.w15_bqx_return" in html and "reg_idx.w60_r2" in html
