"""The rate_idx technical indicators against TA-Lib (its C library, through the ta-lib wheel) on the
same rate_idx high, low and close: equal to 1e-9 once each indicator's seeding has decayed (TA-Lib
seeds Wilder averages with a simple mean, bqx with the first value; both then recurse alike)."""

import numpy as np
import pytest

from bqx.config import Settings
from bqx.extract import pair_inputs
from bqx.features.registry import FAMILIES
from bqx.sample import generate

talib = pytest.importorskip("talib", reason="ta-lib is a dev dependency: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def idx_bars():
    bars = generate(["gbpusd"], days=3, seed=21)["gbpusd"]
    settings = Settings()
    _, inp = pair_inputs(bars, settings, "gbpusd")
    return inp, FAMILIES["technical_idx"].compute(inp, settings)


def _same(ours: np.ndarray, ref: np.ndarray, start: int) -> None:
    np.testing.assert_allclose(ours[start:], ref[start:], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [14, 28])
def test_atr_adx_and_directional_indicators_equal_talib(idx_bars, n):
    inp, f = idx_bars
    h, lo, c = inp.idx_high, inp.idx_low, inp.idx
    start = 30 * n  # (1 - 1/n)^(30 n) < 1e-13: the seeding difference is gone
    _same(f[f"atr_{n}"], talib.ATR(h, lo, c, timeperiod=n), start)
    _same(f[f"plus_di_{n}"], talib.PLUS_DI(h, lo, c, timeperiod=n), start)
    _same(f[f"minus_di_{n}"], talib.MINUS_DI(h, lo, c, timeperiod=n), start)
    _same(f[f"adx_{n}"], talib.ADX(h, lo, c, timeperiod=n), start)


@pytest.mark.parametrize("n", [14, 28, 56])
def test_stochastic_equals_talib_from_the_first_full_window(idx_bars, n):
    inp, f = idx_bars
    k, d = talib.STOCHF(inp.idx_high, inp.idx_low, inp.idx, fastk_period=n, fastd_period=3, fastd_matype=0)
    _same(f[f"stoch_k_{n}"], k, n + 2)
    _same(f[f"stoch_d_{n}"], d, n + 2)


def test_williams_r_and_cci_equal_talib_from_the_first_full_window(idx_bars):
    inp, f = idx_bars
    for n in (14, 28):
        _same(f[f"willr_{n}"], talib.WILLR(inp.idx_high, inp.idx_low, inp.idx, timeperiod=n), n)
    for n in (20, 40):
        _same(f[f"cci_{n}"], talib.CCI(inp.idx_high, inp.idx_low, inp.idx, timeperiod=n), n)


def test_range_indicators_use_the_bar_range_not_the_close_alone(idx_bars):
    from bqx.features import technical

    inp, f = idx_bars
    plain = technical.compute(inp.idx)  # the close-only form BQX uses (high = low = close)
    assert not np.allclose(plain["atr_14"][500:], f["atr_14"][500:])
    assert np.all(f["atr_14"][500:] >= plain["atr_14"][500:] - 1e-12)  # the true range covers |dC|
