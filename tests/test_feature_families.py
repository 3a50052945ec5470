"""Each feature family against an independent reference (pandas, scipy, numpy direct loops) to 1e-6."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bqx.config import Settings
from bqx.extract import pair_inputs
from bqx.features import (
    bollinger,
    dual_domain,
    event_regime,
    fibonacci,
    moving_avg,
    multi_resolution,
    parabolic,
    realized_vol,
    reg,
    spread,
    statistics,
    time_features,
    volume,
)

ROWS = (1500, 2200, 2879)


def close(a, b, rtol=1e-6, atol=1e-12):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


@pytest.fixture(scope="module")
def panel(bars_2d):
    from bqx.panel import build_panel

    return build_panel(bars_2d, Settings())


@pytest.fixture(scope="module")
def inp(bars_2d, panel):
    return pair_inputs(bars_2d["eurusd"], Settings(), "eurusd", panel)[1]


def test_moving_averages(inp):
    out = moving_avg.compute(inp.idx)
    s = pd.Series(inp.idx)
    for w in moving_avg.WINDOWS:
        sma, e = s.rolling(w).mean(), s.ewm(span=w, adjust=False).mean()
        close(out[f"sma{w}_dist"], ((s - sma) / sma * 100).to_numpy(), atol=1e-9)
        close(out[f"ema{w}_dist"], ((s - e) / e * 100).to_numpy(), atol=1e-9)
        close(out[f"ema{w}_slope"], ((e / e.shift(1) - 1) * 100).to_numpy(), atol=1e-9)


def test_bollinger(inp):
    out = bollinger.compute(inp.bqx)
    s = pd.Series(inp.bqx)
    for w in bollinger.WINDOWS:
        mid, sd = s.rolling(w).mean(), s.rolling(w).std(ddof=0)
        close(out[f"bb{w}_upper"], (mid + 2 * sd).to_numpy(), atol=1e-10)
        close(out[f"bb{w}_pctb"], ((s - mid + 2 * sd) / (4 * sd)).to_numpy(), atol=1e-8)


def test_statistics_by_direct_windows(inp):
    out = statistics.compute(inp.bqx)
    for w in statistics.WINDOWS:
        for t in ROWS:
            v = inp.bqx[t - w + 1:t + 1]
            close(out[f"w{w}_mean"][t], v.mean())
            close(out[f"w{w}_std"][t], v.std(ddof=1))
            close(out[f"w{w}_skew"][t], stats.skew(v))
            close(out[f"w{w}_kurt"][t], stats.kurtosis(v))
            close(out[f"w{w}_p10"][t], np.percentile(v, 10))
            close(out[f"w{w}_iqr"][t], stats.iqr(v))
            close(out[f"w{w}_mad"][t], np.mean(np.abs(v - v.mean())))
            counts, _ = np.histogram(v, bins=10, range=(v.min(), v.max()))
            close(out[f"w{w}_entropy"][t], stats.entropy(counts) / np.log(10))
            close(out[f"w{w}_autocorr1"][t], np.corrcoef(v[:-1], v[1:])[0, 1])
            close(out[f"w{w}_jarque_bera"][t], stats.jarque_bera(v).statistic)


def test_realized_vol_by_direct_formulas(inp):
    o, h, lo, c = inp.open, inp.high, inp.low, inp.close
    out = realized_vol.compute(o, h, lo, c)
    for w in realized_vol.WINDOWS:
        for t in ROWS:
            sl = slice(t - w + 1, t + 1)
            r = np.log(c[sl] / c[t - w:t])
            close(out[f"rv{w}"][t], np.sqrt(np.mean(r**2)))
            close(out[f"parkinson{w}"][t], np.sqrt(np.mean(np.log(h[sl] / lo[sl]) ** 2) / (4 * np.log(2))))
            gk = 0.5 * np.log(h[sl] / lo[sl]) ** 2 - (2 * np.log(2) - 1) * np.log(c[sl] / o[sl]) ** 2
            close(out[f"garman_klass{w}"][t], np.sqrt(max(gk.mean(), 0)))
            rs = np.log(h[sl] / c[sl]) * np.log(h[sl] / o[sl]) + np.log(lo[sl] / c[sl]) * np.log(lo[sl] / o[sl])
            k = 0.34 / (1.34 + (w + 1) / (w - 1))
            yz = np.var(np.log(o[sl] / c[t - w:t]), ddof=1) + k * np.var(np.log(c[sl] / o[sl]), ddof=1) \
                + (1 - k) * rs.mean()
            close(out[f"yang_zhang{w}"][t], np.sqrt(yz))
            rprev = np.log(c[t - w:t] / c[t - w - 1:t - 1])
            bv = np.pi / 2 * np.mean(np.abs(r) * np.abs(rprev))
            close(out[f"bipower{w}"][t], np.sqrt(bv))
            close(out[f"jump_share{w}"][t], max(np.mean(r**2) - bv, 0) / np.mean(r**2), atol=1e-9)
            close(out[f"downside_share{w}"][t], np.sum(r[r < 0] ** 2) / np.sum(r**2))


def test_time_features_sessions_with_daylight_saving():
    ts = pd.DatetimeIndex(["2024-07-01 07:30", "2024-07-01 12:30", "2024-01-15 12:30", "2024-07-05 20:59"],
                          tz="UTC")
    out = time_features.compute(ts.asi8)
    # 07:30 UTC in July: London 08:30 BST (open), Tokyo 16:30 JST (open), New York 03:30 EDT (closed)
    assert (out["session_london"][0], out["session_tokyo"][0], out["session_ny"][0]) == (1, 1, 0)
    assert out["mins_since_london_open"][0] == 30
    # 12:30 UTC: July = 08:30 EDT (NY open, overlap); January = 07:30 EST (NY not yet open)
    assert out["session_overlap_london_ny"][1] == 1 and out["session_ny"][2] == 0
    assert out["mins_to_week_close"][3] == 1  # Friday 16:59 New York
    close(out["hour_sin"][0], np.sin(2 * np.pi * 7 / 24))
    assert np.isnan(out["gap_minutes"][0]) and out["gap_minutes"][1] == 299


def test_spread_and_multi_resolution(inp):
    sp = spread.compute(inp.high, inp.low, inp.close, inp.bid, inp.ask)
    t = 2000
    close(sp["spread_bps"][t], (inp.ask[t] - inp.bid[t]) / ((inp.ask[t] + inp.bid[t]) / 2) * 1e4)
    proxy = spread.compute(inp.high, inp.low, inp.close, np.full_like(inp.bid, np.nan), inp.ask)
    close(proxy["spread_bps"][t], (inp.high[t] - inp.low[t]) / inp.close[t] * 1e4 / 2)
    assert proxy["is_quoted"][t] == 0 and sp["is_quoted"][t] == 1
    mr = multi_resolution.compute(inp.idx, inp.idx_high, inp.idx_low)
    for k in multi_resolution.HORIZONS:
        hi, lo = inp.idx_high[t - k + 1:t + 1].max(), inp.idx_low[t - k + 1:t + 1].min()
        close(mr[f"ret{k}"][t], np.log(inp.idx[t] / inp.idx[t - k]) * 1e4)
        close(mr[f"range{k}"][t], (hi - lo) / inp.idx[t] * 1e4)
        close(mr[f"pos{k}"][t], (inp.idx[t] - lo) / (hi - lo))


def test_volume_by_direct_loops(inp):
    h, lo, c, v = inp.high, inp.low, inp.close, inp.volume
    out = volume.compute(h, lo, c, v)
    tp = (h + lo + c) / 3
    for t in ROWS:
        for w in volume.WINDOWS:
            sl = slice(t - w + 1, t + 1)
            vwap = np.sum(tp[sl] * v[sl]) / np.sum(v[sl])
            close(out[f"vwap_dist{w}"][t], (c[t] - vwap) / vwap * 1e4, atol=1e-9)
            r = np.log(c[sl] / c[t - w:t])
            close(out[f"obv_slope{w}"][t], np.sum(np.sign(r) * v[sl]) / np.sum(v[sl]))
        sl = slice(t - 13, t + 1)
        d = tp[sl] - tp[t - 14:t]
        pos, neg = np.sum((tp[sl] * v[sl])[d > 0]), np.sum((tp[sl] * v[sl])[d < 0])
        close(out["mfi14"][t], 100 * pos / (pos + neg))
        r = np.log(c[t - 59:t + 1] / c[t - 60:t])
        close(out["pv_corr60"][t], np.corrcoef(np.abs(r), v[t - 59:t + 1])[0, 1])
    nan = volume.compute(h, lo, c, np.full_like(v, np.nan))
    assert all(np.isnan(x).all() for x in nan.values())


def test_fibonacci_by_direct_loop(inp):
    out = fibonacci.compute(inp.bqx)
    for w in fibonacci.WINDOWS:
        for t in ROWS:
            win = inp.bqx[t - w + 1:t + 1]
            hi, lo, x = win.max(), win.min(), inp.bqx[t]
            levels = {r: hi - r * (hi - lo) for r in fibonacci.RATIOS}
            close(out[f"w{w}_fib618_dist"][t], (x - levels[0.618]) / (hi - lo))
            nearest = min(levels, key=lambda r: abs(x - levels[r]))
            assert out[f"w{w}_nearest_level"][t] == nearest
            last_hi, last_lo = w - 1 - np.argmax(win[::-1]), w - 1 - np.argmin(win[::-1])
            assert out[f"w{w}_direction"][t] == (1 if last_hi > last_lo else -1)


def test_dual_domain_against_pandas(inp):
    out = dual_domain.compute(inp.idx, inp.bqx)
    r = pd.Series(np.log(inp.idx)).diff()
    q = pd.Series(inp.bqx).diff()
    for w in dual_domain.WINDOWS:
        close(out[f"corr{w}"][1000:], r.rolling(w).corr(q).to_numpy()[1000:], atol=1e-9)
        close(out[f"lead_corr{w}"][1000:], r.shift(1).rolling(w).corr(q).to_numpy()[1000:], atol=1e-9)
        beta = r.rolling(w).cov(q) / r.rolling(w).var()
        close(out[f"beta{w}"][1000:], beta.to_numpy()[1000:], atol=1e-9)
        agree = (np.sign(r) == np.sign(q)).astype(float).rolling(w).mean()
        close(out[f"sign_agree{w}"][1000:], agree.to_numpy()[1000:])


def test_event_regime_by_direct_loops(inp):
    out = event_regime.compute(inp.ts_ns, inp.open, inp.high, inp.low, inp.close)
    c, h = inp.close, inp.high
    for t in ROWS:
        assert out["breakout_up60"][t] == float(c[t] > h[t - 60:t].max())
        r = np.log(c[t - 240:t + 1] / c[t - 241:t])
        close(out["shock_z"][t], r[-1] / np.std(r[:-1], ddof=1))
        close(out["trend_efficiency240"][t], abs(np.log(c[t] / c[t - 240])) / np.sum(np.abs(r[1:])))
    ts = pd.DatetimeIndex(inp.ts_ns, tz="UTC")
    t = int(np.flatnonzero(ts == pd.Timestamp("2024-07-02 09:00", tz="UTC"))[0])
    london_open = int(np.flatnonzero(ts == pd.Timestamp("2024-07-02 07:00", tz="UTC"))[0])  # 08:00 BST
    close(out["ret_since_london_open"][t], np.log(c[t] / inp.open[london_open]) * 1e4)


def test_parabolic_is_consistent_with_reg(inp):
    windows = Settings().features.reg_windows
    out = parabolic.compute(inp.idx, inp.bqx, windows)
    a, b = reg.fit_window(inp.idx, 90), reg.fit_window(inp.bqx, 90)
    close(out["w90_r2_diff"], a["r2"] - b["r2"])
    a2 = reg.fit_window(inp.idx, 150)
    close(out["idx_w90_w150_lin_norm_diff"], a["lin_norm"] - a2["lin_norm"])
    assert len(out) == 126


def test_db4_filters_are_orthonormal_quadrature_mirrors():
    from bqx.features.spectral import DB4_HIGH, DB4_LOW

    close(DB4_LOW.sum(), np.sqrt(2), rtol=1e-12)
    close(np.sum(DB4_LOW**2), 1.0, rtol=1e-11)
    for k in (1, 2, 3):  # orthogonal to its own even shifts
        close(np.sum(DB4_LOW[2 * k:] * DB4_LOW[:-2 * k]), 0.0, atol=1e-11)
    close(np.sum(DB4_LOW * DB4_HIGH), 0.0, atol=1e-12)
    close(DB4_HIGH.sum(), 0.0, atol=1e-12)
    close(np.sum(np.arange(8) ** 3 * DB4_HIGH), 0.0, atol=1e-9)  # four vanishing moments


def test_spectral_by_direct_loops(inp):
    from bqx.features import spectral

    out = spectral.compute(inp.idx, inp.bqx)
    r = np.log(inp.idx[1:] / inp.idx[:-1]) * 1e4
    r = np.concatenate([[np.nan], r])
    t, w = 2500, 64
    x = r[t - w + 1:t + 1]
    p = np.abs(np.fft.fft((x - x.mean()) * np.hanning(w))[1:w // 2 + 1]) ** 2
    share = p / p.sum()
    close(out["ret_fft64_band0"][t], share[:4].sum())
    close(out["ret_fft64_entropy"][t], -np.sum(share * np.log(share)) / np.log(32))
    close(out["ret_fft64_dom_period"][t], w / (np.argmax(p) + 1))
    close(out["ret_fft64_band7"][t], share[28:].sum())
    close(out["ret_fft64_centroid"][t], np.sum(np.arange(1, 33) * share) / 32)
    close(out["ret_fft64_flatness"][t], np.exp(np.mean(np.log(p))) / p.mean())
    # level-2 detail by a direct loop over the dilated taps of the level-1 approximation
    a1 = np.array([sum(spectral.DB4_LOW[m] * r[s - m] for m in range(8)) for s in range(t - 60, t + 1)])
    d2 = sum(spectral.DB4_HIGH[m] * a1[-1 - 2 * m] for m in range(8))
    from bqx.features.spec import compile_table, series

    details = compile_table({f"d{j}": d for j, d in spectral.swt_details(series("x")).items()}).batch({"x": r})
    close(details["d2"][t], d2)
    energy = np.mean(details["d3"][t - 63:t + 1] ** 2)
    close(out["ret_db4_d3_energy64"][t], energy)


def test_hmm_forward_filter_matches_hmmlearn_and_a_direct_loop(bars_2d):
    from hmmlearn.hmm import GaussianHMM

    from bqx.features import hmm_regime

    inp = pair_inputs(bars_2d["usdjpy"], Settings(), "usdjpy")[1]
    r = np.log(inp.idx[1:] / inp.idx[:-1]) * 1e4
    start, trans, mu, var = hmm_regime.fit(r[:1500])
    assert np.all(np.diff(var) > 0) and np.allclose(trans.sum(axis=1), 1)
    alpha, loglik = hmm_regime.forward_filter(r, start, trans, mu, var)
    ref = GaussianHMM(n_components=3, covariance_type="diag", init_params="", params="")
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = start, trans, mu[:, None], var[:, None]
    close(loglik.sum(), ref.score(r[:, None]), rtol=1e-9)
    # the filtered distribution by a plain loop over Bayes' rule
    p = start.copy()
    for t in range(400):
        if t:
            p = p @ trans
        like = np.exp(-0.5 * (r[t] - mu) ** 2 / var) / np.sqrt(2 * np.pi * var)
        p = p * like / np.sum(p * like)
        close(alpha[t], p, rtol=1e-9, atol=1e-15)
    # the smoothed posterior differs: filtering must not equal hmmlearn's predict_proba
    assert not np.allclose(alpha, ref.predict_proba(r[:, None]), atol=1e-3)


def test_hmm_features_are_warmup_inside_the_fit_window(bars_2d):
    from bqx.features import hmm_regime

    inp = pair_inputs(bars_2d["eurusd"], Settings(), "eurusd")[1]
    out = hmm_regime.compute(inp.idx, 1200)
    assert np.isnan(out["p_high"][:1200]).all() and np.isfinite(out["p_high"][1200:]).all()
    close(out["p_low"][1200:] + out["p_mid"][1200:] + out["p_high"][1200:], 1.0)
    assert set(np.unique(out["state"][1200:])) <= {0, 1, 2}


def test_hmm_table_is_the_forward_filter_and_a_plain_cusum(bars_2d):
    """The generated kernel's filter equals the array forward filter (checked against hmmlearn above) on
    every row from the fit window on; the CUSUM, the argmax state and its transition probability equal
    plain loops over the same rows."""
    from bqx.features import hmm_regime

    inp = pair_inputs(bars_2d["eurusd"], Settings(), "eurusd")[1]
    fit_rows = 1200
    out = hmm_regime.compute(inp.idx, fit_rows)
    init, trans, mu, var, sd = hmm_regime.fit_start(inp.idx, fit_rows)
    obs = np.log(inp.idx[fit_rows:] / inp.idx[fit_rows - 1:-1]) * 1e4
    alpha, loglik = hmm_regime.forward_filter(obs, init, trans, mu, var)
    live = slice(fit_rows, None)
    close(np.column_stack([out["p_low"], out["p_mid"], out["p_high"]])[live], alpha, rtol=1e-9, atol=1e-15)
    close(out["pred_loglik"][live], loglik, rtol=1e-9)
    state = np.argmax(alpha, axis=1)
    np.testing.assert_array_equal(out["state"][live], state)
    close(out["stay_prob"][live], trans[state, state], rtol=0)
    close(out["exp_var"][live], alpha @ var, rtol=1e-12)
    sp = sn = 0.0
    for t, z in enumerate(obs / sd):
        sp, sn = max(0.0, sp + z - 0.5), max(0.0, sn - z - 0.5)
        alarm = sp > 5.0 or sn > 5.0
        assert (out["cusum_pos"][fit_rows + t], out["cusum_neg"][fit_rows + t], out["cusum_alarm"][fit_rows + t]) \
            == pytest.approx((sp, sn, float(alarm)), rel=1e-9, abs=1e-12)
        if alarm:
            sp = sn = 0.0
    assert out["cusum_alarm"][live].sum() > 0  # the check above saw resets


def test_multi_scale_against_pandas_resample_and_alignment(inp):
    from bqx.features import multi_scale, technical

    out = multi_scale.compute(inp.ts_ns, inp.idx_open, inp.idx_high, inp.idx_low, inp.idx, inp.volume)
    ts = pd.DatetimeIndex(inp.ts_ns, tz="UTC")
    frame = pd.DataFrame({"o": inp.idx_open, "h": inp.idx_high, "l": inp.idx_low, "c": inp.idx, "v": inp.volume},
                         index=ts)
    res = frame.resample("30min", label="left", closed="left").agg(
        {"o": "first", "h": "max", "l": "min", "c": "last", "v": "sum"}).dropna()
    rsi = technical.compute(res["c"].to_numpy())["rsi_14"]
    # at 10:29 the 10:00 bucket is complete; at 10:15 the latest complete bucket is 09:30
    at_final = int(np.flatnonzero(ts == pd.Timestamp("2024-07-02 10:29", tz="UTC"))[0])
    inside = int(np.flatnonzero(ts == pd.Timestamp("2024-07-02 10:15", tz="UTC"))[0])
    b_final = res.index.get_loc(pd.Timestamp("2024-07-02 10:00", tz="UTC"))
    b_inside = res.index.get_loc(pd.Timestamp("2024-07-02 09:30", tz="UTC"))
    close(out["m30_rsi14"][at_final], rsi[b_final])
    close(out["m30_rsi14"][inside], rsi[b_inside])
    c = res["c"].to_numpy()
    close(out["m30_ret3"][at_final], np.log(c[b_final] / c[b_final - 3]) * 1e4)
    close(out["m30_vol_ratio20"][at_final], res["v"].iloc[b_final] / res["v"].iloc[b_final - 19:b_final + 1].mean())
    rng = res["h"].iloc[b_inside] - res["l"].iloc[b_inside]
    close(out["m30_pos_in_last"][inside], (inp.idx[inside] - res["l"].iloc[b_inside]) / rng)
    assert out["m30_mins_since_close"][inside] == 16
    so_far = slice(inside - 15, inside + 1)  # 10:00 .. 10:15
    close(out["m30_partial_range"][inside],
          (inp.idx_high[so_far].max() - inp.idx_low[so_far].min()) / inp.idx[inside] * 1e4)


def test_multi_scale_bucket_visible_only_when_complete():
    from bqx.features.multi_scale import buckets

    ts = pd.DatetimeIndex(["2024-07-01 10:00", "2024-07-01 10:29", "2024-07-01 10:30", "2024-07-01 10:45",
                           "2024-07-01 11:02"], tz="UTC").asi8
    _, starts, ends, visible = buckets(ts, 30)
    # 10:00 bucket ends on its final minute -> visible there; 10:30 bucket lacks 10:59 -> at the next bar;
    # the 11:00 bucket is unfinished -> never
    assert list(starts) == [0, 2, 4] and list(visible) == [1, 4, 5]
