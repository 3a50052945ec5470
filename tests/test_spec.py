"""Features declared as expressions (bqx.features.spec): every one-row primitive equals its batch
counterpart in bqx.features.rolling, the generated kernels are causal, and the derived layout,
warm-up and names are what the declaration says."""

import numpy as np
import pytest

from bqx.features import rolling, technical
from bqx.features.spec import (
    compile_table,
    diff,
    ema,
    group_first,
    group_max,
    group_min,
    gt,
    lag,
    layout,
    param,
    pick,
    rank,
    rows_since_max,
    rows_since_min,
    sdiv,
    series,
    since,
    wentropy,
    wilder,
    wmad,
    wmax,
    wmean,
    wmin,
    wmoments,
    wquantile,
    wstd,
    wsum,
)

X = series("x")


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    """A rate-like random walk with a NaN warm-up and a NaN gap inside."""
    rng = np.random.default_rng(7)
    x = 100.0 + np.cumsum(rng.normal(0.0, 0.01, 5000))
    x[:30] = np.nan
    x[2500] = np.nan
    return x


def _batch(expr, x: np.ndarray) -> np.ndarray:
    return compile_table({"f": expr}).batch({"x": x})["f"]


@pytest.mark.parametrize("w", [1, 3, 20, 61])
def test_window_sums_means_and_variances_equal_the_batch_primitives(walk, w):
    np.testing.assert_allclose(_batch(wsum(X, w), walk), rolling.rolling_sum(walk, w), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(_batch(wmean(X, w), walk), rolling.rolling_mean(walk, w), rtol=1e-12, equal_nan=True)
    if w > 1:
        for ddof in (0, 1):
            np.testing.assert_allclose(_batch(wstd(X, w, ddof), walk), rolling.rolling_std(walk, w, ddof),
                                       rtol=1e-7, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("w", [2, 14, 26])
def test_window_extremes_and_rows_since_them_equal_the_batch_primitives(walk, w):
    x = walk[:2400]  # one warm-up, no gap: the filters' NaN rule is only defined for leading NaNs
    np.testing.assert_array_equal(_batch(wmax(X, w), x), rolling.rolling_max(x, w))
    np.testing.assert_array_equal(_batch(wmin(X, w), x), rolling.rolling_min(x, w))
    since_hi, since_lo = rolling.rows_since_extremes(x, w - 1)
    np.testing.assert_array_equal(_batch(rows_since_max(X, w), x), since_hi)
    np.testing.assert_array_equal(_batch(rows_since_min(X, w), x), since_lo)
    # a NaN inside the window makes the window NaN, and the extreme comes back once it has left
    got = _batch(wmax(X, w), walk)
    assert np.isnan(got[2500:2500 + w]).all() and np.isfinite(got[2500 + w:]).all()
    np.testing.assert_array_equal(got[2500 + w:], rolling.rolling_max(walk[2501:], w)[w - 1:])


def _rounded(walk: np.ndarray) -> np.ndarray:
    """The walk rounded (repeated values: ties), with its NaNs and an infinity."""
    x = np.round(walk, 2)
    x[4000] = np.inf
    return x


def _full_windows(x: np.ndarray, w: int, got: dict[str, np.ndarray]):
    """(t, the last w values) for every row whose window is full and finite; on every other row each
    column of ``got`` must be NaN."""
    for t in range(len(x)):
        v = x[max(0, t - w + 1):t + 1]
        if t < w - 1 or not np.isfinite(v).all():
            assert all(np.isnan(col[t]) for col in got.values()), t
            continue
        yield t, v


@pytest.mark.parametrize("w", [1, 5, 26])
def test_window_extremes_by_blocks_equal_direct_windows(walk, w):
    """wext works in blocks of w rows (the previous block's suffix extremes, the current block's running
    one): every window, whichever block boundary it straddles, equals the window itself, ties (the
    rounded walk) counted from the most recent, and a window holding a NaN or an infinity is NaN."""
    x = _rounded(walk)
    table = {"hi": wmax(X, w), "lo": wmin(X, w), "since_hi": rows_since_max(X, w), "since_lo": rows_since_min(X, w)}
    got = compile_table(table).batch({"x": x})
    for t, v in _full_windows(x, w, got):
        want = {"hi": v.max(), "lo": v.min(), "since_hi": w - 1 - np.flatnonzero(v == v.max())[-1],
                "since_lo": w - 1 - np.flatnonzero(v == v.min())[-1]}
        assert {k: got[k][t] for k in table} == want, t


def test_ties_count_from_the_most_recent_extreme():
    x = np.array([1.0, 3.0, 2.0, 3.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(_batch(rows_since_max(X, 3), x), [np.nan, np.nan, 1, 0, 1, 2, 2])
    np.testing.assert_array_equal(_batch(rows_since_min(X, 3), x), [np.nan, np.nan, 2, 1, 0, 0, 0])


@pytest.mark.parametrize("w", [5, 20, 40])
def test_mean_absolute_deviation_recursive_averages_and_lags_equal_the_batch_primitives(walk, w):
    _, mad = rolling.rolling_mean_abs_dev(walk, w)
    np.testing.assert_allclose(_batch(wmad(X, w), walk), mad, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(_batch(ema(X, w), walk), rolling.ema(walk, w), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(_batch(wilder(X, w), walk), rolling.wilder(walk, w), rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(_batch(lag(X, w), walk), rolling.shift(walk, w))
    got = _batch(sdiv(diff(X, w), X - lag(X, 1)), walk)
    np.testing.assert_array_equal(got, rolling.safe_div(rolling.diff(walk, w), rolling.diff(walk, 1)))


@pytest.mark.parametrize("w", [2, 7, 30])
def test_sorted_window_quantiles_entropy_and_moments_equal_direct_windows(walk, w):
    """Quantiles and the histogram entropy read the sorted window, moments and the lag-1
    autocorrelation the ring; each equals numpy on the window itself, and a window holding the NaN or
    an infinity is NaN. Repeated values (the rounded walk) exercise removal among equal values."""
    x = _rounded(walk)
    table = {"p10": wquantile(X, w, 0.1), "p50": wquantile(X, w, 0.5), "p100": wquantile(X, w, 1.0),
             "h": wentropy(X, w, 10)}
    m2, m3, m4, ac = wmoments(X, w)
    table.update({"m2": m2, "m3": m3, "m4": m4, "ac": ac})
    got = compile_table(table).batch({"x": x})
    for t, v in _full_windows(x, w, got):
        want = {"p10": np.percentile(v, 10), "p50": np.percentile(v, 50), "p100": v.max()}
        c = v - v.mean()
        want.update({"m2": np.mean(c**2), "m3": np.mean(c**3), "m4": np.mean(c**4)})
        counts, _ = np.histogram(v, bins=10, range=(v.min(), v.max()))
        p = counts[counts > 0] / w
        want["h"] = -np.sum(p * np.log(p)) / np.log(10) if v.max() > v.min() else np.nan
        a, b = v[:-1], v[1:]
        flat = np.ptp(a) == 0 or np.ptp(b) == 0
        want["ac"] = np.nan if w < 3 or flat else np.corrcoef(a, b)[0, 1]
        for k, value in want.items():
            np.testing.assert_allclose(got[k][t], value, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=f"{k} {t}")


def test_rows_since_an_event_and_per_session_first_values_and_extremes_equal_pandas(walk):
    """since() is rolling.rows_since (NaN before the first event, a NaN condition is no event);
    group_first/max/min restart whenever the key changes, as pandas' groupby on consecutive keys."""
    import pandas as pd

    key = np.repeat(np.arange(50, dtype=np.float64) * 86_400e9, 100)  # 50 sessions of 100 rows
    event = gt(X - lag(X, 1), 0.02)
    table = {"since": since(event), "first": group_first(X, series("k")), "hi": group_max(X, series("k")),
             "lo": group_min(X, series("k"))}
    x = walk.copy()
    x[:30] = 100.0  # the groups' pandas reference skips NaN; give them numbers
    x[2500] = 100.0
    got = compile_table(table).batch({"x": x, "k": key})
    jump = np.diff(x, prepend=np.nan) > 0.02
    np.testing.assert_array_equal(got["since"], rolling.rows_since(jump))
    groups = pd.Series(x).groupby(key)
    np.testing.assert_array_equal(got["first"], groups.transform("first").to_numpy())
    np.testing.assert_array_equal(got["hi"], groups.cummax().to_numpy())
    np.testing.assert_array_equal(got["lo"], groups.cummin().to_numpy())


def test_running_sums_do_not_drift_over_a_long_series():
    """Two million rows near 100 with a tiny spread: the incremental variance stays equal to the
    exact two-pass one on the last windows (the sums are refreshed exactly every window)."""
    rng = np.random.default_rng(1)
    x = 100.0 + np.cumsum(rng.normal(0.0, 1e-4, 2_000_000))
    got = _batch(wstd(X, 60), x)
    exact = np.array([np.std(x[t - 59:t + 1], ddof=1) for t in range(len(x) - 1000, len(x))])
    np.testing.assert_allclose(got[-1000:], exact, rtol=1e-8)


def test_a_window_of_zeros_sums_to_exactly_zero():
    """Stale quotes give runs of exact zeros: their window sum is 0, not the running sum's residue (here
    0.1 + 0.2 less 0.1 and 0.2 leaves 2.8e-17 until the next exact refresh), so ratios of it are NaN and
    ranks of it tie."""
    x = np.array([1.0, 1.0, 1.0, 1.0, 0.1, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4])
    got = compile_table({"s": wsum(X, 4)}).batch({"x": x})["s"]
    np.testing.assert_array_equal(got[9:12], [0.0, 0.0, 0.0])
    assert got[8] == pytest.approx(0.2) and got[12] == pytest.approx(0.4)


def test_pick_and_rank_by_a_parameter_index_equal_the_cross_sectional_ranks():
    """rank: 1 = the largest finite value, NaN for a non-finite one, values within 1e-9 tie in order
    of position (cross_sectional's rule, here as a plain loop); pick: the indexed value; an index out
    of range gives NaN."""
    def rank_rows(rows: np.ndarray) -> np.ndarray:
        out = np.full(rows.shape, np.nan)
        for t, row in enumerate(rows):
            for j, v in enumerate(row):
                if np.isfinite(v):
                    tied_before = [u for u in row[:j] if np.isfinite(u) and abs(u - v) <= 1e-9 * max(abs(u), abs(v), 1)]
                    above = [u for u in row if np.isfinite(u) and u > v and abs(u - v) > 1e-9 * max(abs(u), abs(v), 1)]
                    out[t, j] = 1 + len(tied_before) + len(above)
        return out

    rng = np.random.default_rng(3)
    v = rng.standard_normal((400, 4))
    v[::7, 1] = v[::7, 2]  # exact ties
    v[::5, 3] = v[::5, 0] * (1 + 1e-12)  # ties within the tolerance
    v[::11, 2] = np.nan
    names = ("a", "b", "c", "d")
    inputs = [series(n) for n in names]
    kernel = compile_table({"rank": rank(param("i"), inputs), "pick": pick(param("i"), inputs)}, ("i",))
    want = rank_rows(v)
    for i in range(4):
        got = kernel.batch(dict(zip(names, v.T, strict=True)), (float(i),))
        np.testing.assert_array_equal(got["rank"], want[:, i])
        np.testing.assert_array_equal(got["pick"], v[:, i])
    outside = kernel.batch(dict(zip(names, v.T, strict=True)), (4.0,))
    assert np.isnan(outside["rank"]).all() and np.isnan(outside["pick"]).all()


def test_step_on_a_reused_state_continues_row_by_row_as_the_batch(walk):
    """init resets a state vector whatever it held (here a used one: stale sums, counts and a sorted
    window's length), and stepping row by row, the row index kept in the state, gives the batch's rows."""
    table = {"q": wquantile(X, 30, 0.5), "hi": wmax(X, 20), "since": rows_since_min(X, 26), "s": wsum(X, 14),
             "sd": wstd(X, 20), "e": ema(X, 10), "l": lag(X, 40)}
    kernel = compile_table(table)
    x = walk[:3000]
    want = kernel.batch({"x": x})
    state = np.full(kernel.state_size, 3.0)
    kernel.init(state)
    out = np.empty(len(table))
    for t in range(len(x)):
        kernel.step(t, x, state, out)
        np.testing.assert_array_equal(out, [want[k][t] for k in table], err_msg=str(t))


def test_every_row_depends_on_earlier_rows_only(walk):
    """Each output of the full technical table at row t is unchanged when every later row changes."""
    table = technical.table(X, series("h"), series("lo"))
    kernel = compile_table(table)
    h, lo = walk + 0.003, walk - 0.003
    base = kernel.batch({"x": walk, "h": h, "lo": lo})
    rng = np.random.default_rng(2)
    for t in (400, 2600, 4000):
        later = [a.copy() for a in (walk, h, lo)]
        for a in later:
            a[t + 1:] *= rng.uniform(0.9, 1.1, len(a) - t - 1)
        moved = kernel.batch(dict(zip(("x", "h", "lo"), later, strict=True)))
        for name in table:
            np.testing.assert_array_equal(moved[name][: t + 1], base[name][: t + 1], err_msg=name)


def test_equal_subexpressions_are_one_node_with_their_own_state(monkeypatch):
    """The rolling high shared by stochastic %K and Williams %R is computed once; every node that
    keeps state gets slots of its own (a ring of a power-of-two capacity, its values twice over), so
    does every value read across the kernel's compiled parts; after the row index in slot 0 the
    kernel's state is exactly their sum."""
    monkeypatch.setattr("bqx.features.spec.PART_NODES", 48)  # technical in parts (one function at 400)
    table = technical.table(X, series("h"), series("lo"))
    lay = layout(list(table.values()))
    highs = [n for n in lay.nodes if n.op == "wext" and n.args[0] == series("h") and n.params[0] == 14]
    assert len(highs) == 1
    assert all(cap & (cap - 1) == 0 for _, cap in lay.ring.values())
    assert lay.ring[series("h")][1] == 64  # wmax(h, 56) reads 56 values
    width = {"wsum": 3, "wvar": 4, "ewm": 2}
    spans = sorted([(o, o + 2 * cap) for o, cap in lay.ring.values()]
                   + [(o, o + width.get(n.op, 3 + 2 * (n.params[0] + 1))) for n, o in lay.slots.items()]
                   + [(o, o + 1) for o in lay.kept.values()])
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False)) and spans[0][0] == 1
    assert spans[-1][1] == lay.size  # (the kernel's state_size is lay.size by construction)
    # a large table is compiled in parts; each value crosses parts through one slot
    kept_apart = [n for n in lay.nodes if n.op not in ("in", "param", "const") or n in lay.ring]
    assert len(lay.parts) > 1 and [n for part in lay.parts for n in part] == kept_apart
    # technical_bqx passes one series three times: it is one input
    assert compile_table(technical.BQX).inputs == ("bqx",)


def test_warmup_is_the_longest_path_of_lookbacks():
    assert compile_table({"f": wmean(X, 20)}).warmup() == 20
    assert compile_table({"f": lag(wmean(X, 20), 11)}).warmup() == 31
    assert compile_table({"f": ema(X, 10)}).warmup() == 34  # 6 / alpha rows, alpha = 2 / 11
    assert compile_table({"f": wmean(X, 20), "g": lag(X, 5)}).warmup({"x": 100}) == 120


def test_a_new_feature_is_one_entry_and_a_name_is_declared_once():
    table = dict(technical.table(X, X, X))
    table["range_pos_50"] = sdiv(X - wmin(X, 50), wmax(X, 50) - wmin(X, 50))  # the whole declaration
    kernel = compile_table(table)
    x = 100.0 + np.cumsum(np.random.default_rng(3).normal(0, 0.01, 800))
    got = kernel.batch({"x": x})["range_pos_50"]
    want = rolling.safe_div(x - rolling.rolling_min(x, 50), rolling.rolling_max(x, 50) - rolling.rolling_min(x, 50))
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    state, row = np.zeros(kernel.state_size), np.empty(len(kernel.names))
    kernel.init(state)
    for t in range(len(x)):
        kernel.step(t, x, state, row)
    assert row[kernel.names.index("range_pos_50")] == got[-1]
    with pytest.raises(ValueError, match="declared twice: \\['f'\\]"):
        compile_table([("f", wmean(X, 3)), ("f", wmean(X, 4))])


def test_bqx_kernels_lists_every_declared_table(capsys):
    from bqx.cli import main
    from bqx.features.registry import FAMILIES

    assert main(["kernels"]) == 0
    out = capsys.readouterr().out
    declared = [t for t, fam in FAMILIES.items() if fam.online is not None and fam.online.kernel is not None]
    assert len(declared) >= 16
    for table in [*declared, "multi_scale.buckets"]:  # with the kernels that are parts of other tables
        assert f"\n{table} " in "\n" + out
    assert "\nother tables " in out  # the hand-written numba functions, through a short extract
    assert "feature kernels ready (" in out


def test_generated_source_names_its_primitives_and_a_read_only_cache_falls_back(tmp_path, monkeypatch):
    """The generated file carries a hash of the primitive modules (numba's cache only watches the
    generated file itself), and an unwritable kernel folder falls back to a private temporary one."""
    from bqx.features import spec

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("BQX_KERNEL_DIR", str(blocked / "kernels"))
    table = {"g": wmean(X, 7) - lag(X, 2)}
    kernel = compile_table(table)
    assert spec._primitives_digest() in open(kernel.module.__file__).read()
    import os
    import tempfile

    fallback = os.path.join(tempfile.gettempdir(), f"bqx-kernels-{os.getuid()}")
    assert str(kernel.module.__file__).startswith(fallback)
    x = np.arange(20.0)
    np.testing.assert_allclose(kernel.batch({"x": x})["g"][6:], (x[6:] - 3.0) - (x[6:] - 2.0))


def test_sliding_quadratic_fits_equal_least_squares_after_many_rows():
    """REG's moments slide in O(1) per row; after 300,000 rows the fitted coefficients still equal a
    direct least-squares fit of each window (numpy.polyfit) and the r2 its definition."""
    from bqx.features import reg

    rng = np.random.default_rng(4)
    y = 100.0 + np.cumsum(rng.normal(0.0, 0.01, 300_000))
    w = 90
    got = reg.fit_window(y, w)
    for t in (w - 1, 150_017, len(y) - 1):
        win = y[t - w + 1:t + 1]
        a, b, c = np.polyfit(np.arange(w, dtype=float), win, 2)
        np.testing.assert_allclose([got["a_coef"][t], got["b_coef"][t], got["c_coef"][t]], [a, b, c],
                                   rtol=1e-6, atol=1e-9)
        fitted = np.polyval([a, b, c], np.arange(w, dtype=float))
        r2 = 1.0 - np.sum((win - fitted) ** 2) / np.sum((win - win.mean()) ** 2)
        np.testing.assert_allclose(got["r2"][t], r2, rtol=1e-6)
    assert np.isnan(got["a_coef"][: w - 1]).all()
