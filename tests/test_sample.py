import numpy as np
import pandas as pd

from bqx.pairs import PAIRS, split_pair
from bqx.sample import generate


def test_triangles_hold_and_pairs_are_complete():
    bars = generate(days=1, seed=1)
    assert sorted(bars) == sorted(PAIRS) and len(PAIRS) == 28
    for ab in ("eurusd", "gbpjpy", "audnzd"):
        a, b = split_pair(ab)
        for c in ("USD", "JPY", "CHF"):
            if c in (a, b):
                continue
            ac = next(p for p in PAIRS if {p[:3], p[3:]} == {a.lower(), c.lower()})
            cb = next(p for p in PAIRS if {p[:3], p[3:]} == {c.lower(), b.lower()})
            la = np.log(bars[ac]["close"]) * (1 if ac.startswith(a.lower()) else -1)
            lb = np.log(bars[cb]["close"]) * (1 if cb.startswith(c.lower()) else -1)
            assert np.max(np.abs(la + lb - np.log(bars[ab]["close"]))) < 1e-12


def test_sessions_weekends_and_volatility_are_realistic():
    bars = generate(["eurusd"], days=10, seed=2)["eurusd"]
    ts = bars["ts_utc"]
    assert not ((ts.dt.dayofweek == 5).any())  # Saturday closed
    gaps = ts.diff().dropna()
    weekends = gaps[gaps > pd.Timedelta("1h")]
    # Mon 00:00 + 10 x 24 open hours crosses two Fri 22:00 - Sun 22:00 closes
    assert len(weekends) == 2 and (weekends == pd.Timedelta("48h") + pd.Timedelta("1min")).all()
    r = np.log(bars["close"]).diff().dropna()
    assert 5e-5 < r.std() < 3e-4  # minute log-return vol of a major
    by_hour = r.abs().groupby(ts.dt.hour.iloc[1:]).mean()
    assert by_hour.loc[13] > 1.5 * by_hour.loc[22]  # London/NY overlap busier than late NY


def test_seed_determinism_and_pair_independence():
    a = generate(["eurusd", "usdjpy"], days=1, seed=5)
    b = generate(["usdjpy"], days=1, seed=5)
    pd.testing.assert_frame_equal(a["usdjpy"], b["usdjpy"])
    c = generate(["usdjpy"], days=1, seed=6)
    assert not np.allclose(b["usdjpy"]["close"], c["usdjpy"]["close"])


def test_ar1_is_scipys_recursive_filter():
    """The sample's volatility recursion without scipy (the serving image builds sample bars to compile its
    kernels) equals scipy's lfilter on a year of minutes."""
    from scipy.signal import lfilter

    from bqx.sample import ar1

    x = np.random.default_rng(0).standard_normal(372_960) * 0.08
    phi = 0.5 ** (1 / 120)
    np.testing.assert_allclose(ar1(x, phi), lfilter([1.0], [1.0, -phi], x), rtol=0, atol=1e-12)
    assert ar1(x[:1], phi)[0] == x[0] and len(ar1(x[:0], phi)) == 0
