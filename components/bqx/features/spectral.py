"""``spectral_features``: FFT band power and entropy, db4 wavelet energies (80 features).

Two series: the rate_idx log return r (bps) and the one-row BQX change q.

FFT, for each series and W in (64, 256) (48): each trailing window is demeaned, Hann-tapered and
transformed; with P_k the power at k = 1..W/2, ``fft{W}_band{j}`` (j = 0..7) is the share of power in
the j-th of 8 equal-width frequency bands, ``fft{W}_entropy`` the Shannon entropy of P / sum P over
ln(W/2), ``fft{W}_dom_period`` W / argmax_k P_k (rows), ``fft{W}_centroid`` sum k P / sum P / (W/2),
``fft{W}_flatness`` geometric over arithmetic mean of P.

Wavelets (32): an undecimated (a trous) Daubechies-4 transform with causal filters: level j applies
the db4 high-pass and low-pass filters dilated by 2^(j-1) to the previous approximation, trailing
taps only, so each coefficient uses rows <= t. For levels j = 1..4: ``db4_d{j}_energy{W}`` = mean d_j^2
over W in (64, 256) and ``db4_d{j}_share{W}`` = that energy over the sum of the four levels' energies.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import latest as lt
from bqx.features import primary
from bqx.features.family import Family, Online
from bqx.features.rolling import rolling_mean, safe_div, shift
from bqx.features.windows import window_reduce

FFT_WINDOWS: tuple[int, ...] = (64, 256)
WAVELET_WINDOWS: tuple[int, ...] = (64, 256)
LEVELS: tuple[int, ...] = (1, 2, 3, 4)
BANDS = 8
SERIES: tuple[str, ...] = ("ret", "bqx")
# Daubechies-4 decomposition filters (8 taps), low-pass h and high-pass g = quadrature mirror of h.
DB4_LOW = np.array([-0.010597401784997278, 0.032883011666982945, 0.030841381835986965, -0.18703481171888114,
                    -0.02798376941698385, 0.6308807679295904, 0.7148465705525415, 0.23037781330885523])
DB4_HIGH = np.array([(-1) ** (k + 1) * DB4_LOW[len(DB4_LOW) - 1 - k] for k in range(len(DB4_LOW))])
FFT_FIELDS = tuple(f"band{j}" for j in range(BANDS)) + ("entropy", "dom_period", "centroid", "flatness")


def names() -> list[str]:
    out = [f"{s}_fft{w}_{f}" for s in SERIES for w in FFT_WINDOWS for f in FFT_FIELDS]
    out += [f"{s}_db4_d{j}_{kind}{w}" for s in SERIES for j in LEVELS for kind in ("energy", "share")
            for w in WAVELET_WINDOWS]
    return out


def warmup() -> int:
    dilated = sum((len(DB4_LOW) - 1) * 2 ** (j - 1) for j in LEVELS)
    return 1 + max(max(FFT_WINDOWS), dilated + max(WAVELET_WINDOWS))


def _fft_reducer(w: int):  # noqa: ANN202  (returns a reducer closure)
    taper = np.hanning(w)
    k = np.arange(1, w // 2 + 1)
    band_of = np.minimum((k - 1) * BANDS // len(k), BANDS - 1)

    def reduce(block: np.ndarray) -> dict[str, np.ndarray]:
        x = (block - block.mean(axis=1, keepdims=True)) * taper
        p = np.abs(np.fft.rfft(x, axis=1)[:, 1:]) ** 2
        total = p.sum(axis=1)
        ok = total > 0
        share = p / np.where(ok, total, 1.0)[:, None]
        out = {f"band{j}": share[:, band_of == j].sum(axis=1) for j in range(BANDS)}
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.sum(np.where(share > 0, share * np.log(share), 0.0), axis=1) / np.log(len(k))
            geo = np.exp(np.mean(np.log(p), axis=1))
        out["entropy"] = ent
        out["dom_period"] = w / k[np.argmax(p, axis=1)]
        out["centroid"] = (share * k).sum(axis=1) / len(k)
        out["flatness"] = geo / (total / len(k))
        for name in out:
            out[name] = np.where(ok, out[name], np.nan)
        return out

    return reduce


def causal_filter(x: np.ndarray, taps: np.ndarray, dilation: int) -> np.ndarray:
    """y_t = sum_m taps[m] x_{t - m * dilation} (NaN until every tap has data)."""
    y = np.zeros(len(x))
    for m, c in enumerate(taps):
        y = y + c * shift(x, m * dilation)
    return y


def swt_details(x: np.ndarray, levels: tuple[int, ...] = LEVELS) -> dict[int, np.ndarray]:
    """Detail coefficients of the causal undecimated db4 transform, one array per level."""
    approx = x
    details = {}
    for j in range(1, max(levels) + 1):
        dilation = 2 ** (j - 1)
        details[j] = causal_filter(approx, DB4_HIGH, dilation)
        approx = causal_filter(approx, DB4_LOW, dilation)
    return {j: details[j] for j in levels}


def compute(idx: np.ndarray, bqx: np.ndarray) -> dict[str, np.ndarray]:
    series = {"ret": np.log(idx / shift(idx, 1)) * 1e4, "bqx": bqx - shift(bqx, 1)}
    out: dict[str, np.ndarray] = {}
    for s, x in series.items():
        for w in FFT_WINDOWS:
            block = window_reduce(x, w, _fft_reducer(w))
            out.update({f"{s}_fft{w}_{f}": block[f] for f in FFT_FIELDS})
        details = swt_details(x)
        for w in WAVELET_WINDOWS:
            energies = {j: rolling_mean(d * d, w) for j, d in details.items()}
            total = sum(energies.values())
            for j, e in energies.items():
                out[f"{s}_db4_d{j}_energy{w}"] = e
                out[f"{s}_db4_d{j}_share{w}"] = safe_div(e, total)
    return {k: out[k] for k in names()}


# --- online: one row at a time (see bqx.features.latest) ---
# state per series: a ring of the input (RING_X rows, also the FFT windows), rings of the approximations
# of levels 1..3 (RING_A rows, longer than the widest dilated filter) and of the details of levels 1..4.
RING_X = max(max(FFT_WINDOWS), max(WAVELET_WINDOWS))
RING_A = 64
RING_D = max(WAVELET_WINDOWS)
_PER_SERIES = RING_X + 3 * RING_A + len(LEVELS) * RING_D
_ROWS = len(SERIES) * _PER_SERIES  # rows seen: ring positions count rows, not buffer indices
ONLINE_STATE = _ROWS + 1
_REDUCERS = {w: _fft_reducer(w) for w in FFT_WINDOWS}
_FFT_OUT = len(SERIES) * len(FFT_WINDOWS) * len(FFT_FIELDS)


def online_init(state: np.ndarray) -> None:
    state[:] = np.nan
    state[_ROWS] = 0.0


@njit(cache=True)
def _ring_get(state: np.ndarray, base: int, size: int, n: int, back: int) -> float:
    u = n - back
    return state[base + u % size] if u >= 0 else np.nan


@njit(cache=True)
def _wavelets(t: int, idx: np.ndarray, bqx: np.ndarray, state: np.ndarray, out: np.ndarray,
              windows: np.ndarray) -> None:
    """Advance the rings by row t, write the wavelet features, and copy each series' last RING_X inputs
    (oldest first) into ``windows`` for the FFT features."""
    n = int(state[_ROWS])
    state[_ROWS] = n + 1
    j = _FFT_OUT
    for si in range(2):
        base = si * _PER_SERIES
        x = np.log(idx[t] / lt.lag(idx, t, 1)) * 1e4 if si == 0 else bqx[t] - lt.lag(bqx, t, 1)
        state[base + n % RING_X] = x
        prev_base, prev_size = base, RING_X
        for level in range(1, len(LEVELS) + 1):
            dil = 2 ** (level - 1)
            hi = lo = 0.0
            for m in range(len(DB4_LOW)):
                v = _ring_get(state, prev_base, prev_size, n, m * dil)
                hi += DB4_HIGH[m] * v
                lo += DB4_LOW[m] * v
            d_base = base + RING_X + 3 * RING_A + (level - 1) * RING_D
            state[d_base + n % RING_D] = hi
            if level < len(LEVELS):
                a_base = base + RING_X + (level - 1) * RING_A
                state[a_base + n % RING_A] = lo
                prev_base, prev_size = a_base, RING_A
        energies = np.empty((len(LEVELS), len(WAVELET_WINDOWS)))
        for li in range(len(LEVELS)):
            d_base = base + RING_X + 3 * RING_A + li * RING_D
            for wi in range(len(WAVELET_WINDOWS)):
                w = WAVELET_WINDOWS[wi]
                e = 0.0
                for back in range(w):
                    v = _ring_get(state, d_base, RING_D, n, back)
                    e += v * v
                energies[li, wi] = e / w
        for li in range(len(LEVELS)):
            for wi in range(len(WAVELET_WINDOWS)):
                out[j + wi] = energies[li, wi]
                out[j + len(WAVELET_WINDOWS) + wi] = lt.sdiv(energies[li, wi], energies[:, wi].sum())
            j += 2 * len(WAVELET_WINDOWS)
        for back in range(RING_X):
            windows[si, RING_X - 1 - back] = _ring_get(state, base, RING_X, n, back)


def online_step(t: int, idx: np.ndarray, bqx: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    windows = np.empty((len(SERIES), RING_X))
    _wavelets(t, idx, bqx, state, out, windows)
    nf = len(FFT_FIELDS)
    for wi, w in enumerate(FFT_WINDOWS):  # both series' windows in one reducer call (rows are independent)
        block = windows[:, RING_X - w:]
        res = _REDUCERS[w](block)
        vals = np.stack([res[f] for f in FFT_FIELDS], axis=1)  # (series, fields)
        vals[np.isnan(block).any(axis=1)] = np.nan
        for si in range(len(SERIES)):
            j = (si * len(FFT_WINDOWS) + wi) * nf
            out[j:j + nf] = vals[si]
    return ONLINE_STATE


def online_warm(t: int, idx: np.ndarray, bqx: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    """Advance the rings only (the FFT features carry no state): seeding uses it for early rows."""
    _wavelets(t, idx, bqx, state, out, np.empty((len(SERIES), RING_X)))
    return ONLINE_STATE


TABLES: dict[str, Family] = {
    "spectral_features": Family(lambda s: names(), lambda inp, s: compute(inp.idx, inp.bqx),
                                lambda s: primary.primary_warmup(s) + warmup(),
                                Online(("idx", "bqx"), online_step, state_size=lambda s: ONLINE_STATE,
                                       init=online_init, warm=online_warm)),
}
