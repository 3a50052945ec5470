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

from functools import cache

import numpy as np
from numba import njit

from bqx.config import Settings
from bqx.features import primary
from bqx.features.family import Family, Online, input_warmup
from bqx.features.rolling import shift
from bqx.features.spec import Expr, Kernel, Table, compile_table, lag, log, sdiv, series, wmean
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
_FFT_OUT = len(SERIES) * len(FFT_WINDOWS) * len(FFT_FIELDS)


def names() -> list[str]:
    return [f"{s}_fft{w}_{f}" for s in SERIES for w in FFT_WINDOWS for f in FFT_FIELDS] + list(wavelet_kernel().names)


def inputs(idx: Expr, bqx: Expr) -> dict[str, Expr]:
    """The two series: rate_idx log return (bps) and the one-row BQX change."""
    return {"ret": log(idx / lag(idx, 1)) * 1e4, "bqx": bqx - lag(bqx, 1)}


def causal_filter(x: Expr, taps: np.ndarray, dilation: int) -> Expr:
    """y_t = sum_m taps[m] x_{t - m * dilation} (NaN until every tap has data)."""
    y = float(taps[0]) * x
    for m in range(1, len(taps)):
        y = y + float(taps[m]) * lag(x, m * dilation)
    return y


def swt_details(x: Expr) -> dict[int, Expr]:
    """Detail coefficients of the causal undecimated db4 transform, one per level."""
    approx, details = x, {}
    for j in LEVELS:
        dilation = 2 ** (j - 1)
        details[j] = causal_filter(approx, DB4_HIGH, dilation)
        approx = causal_filter(approx, DB4_LOW, dilation)
    return details


def wavelet_table(idx: Expr, bqx: Expr) -> Table:
    """The 32 wavelet features, declared once (the FFT features are a window reducer, below)."""
    t: Table = {}
    for s, x in inputs(idx, bqx).items():
        energies = {(j, w): wmean(d * d, w) for j, d in swt_details(x).items() for w in WAVELET_WINDOWS}
        total = {w: sum((energies[j, w] for j in LEVELS[1:]), energies[LEVELS[0], w]) for w in WAVELET_WINDOWS}
        for j in LEVELS:
            for kind in ("energy", "share"):
                for w in WAVELET_WINDOWS:
                    e = energies[j, w]
                    t[f"{s}_db4_d{j}_{kind}{w}"] = e if kind == "energy" else sdiv(e, total[w])
    return t


@cache
def wavelet_kernel() -> Kernel:
    return compile_table(wavelet_table(series("idx"), series("bqx")))


def warmup(s: Settings) -> int:
    """The wavelets' derived warm-up, or the FFT's longest window of one-row changes if longer."""
    fft = max(FFT_WINDOWS) + 1 + primary.primary_warmup(s)
    return max(wavelet_kernel().warmup(input_warmup(s)), fft)


@cache
def _band_edges(w: int) -> np.ndarray:
    """Where each band starts among the frequencies k = 1..w/2 (index k - 1), and the end: 8 equal-width
    runs (the last takes the remainder)."""
    half = w // 2
    band_of = np.minimum(np.arange(half) * BANDS // half, BANDS - 1)
    return np.searchsorted(band_of, np.arange(BANDS + 1)).astype(np.int64)


@cache
def _taper(w: int) -> np.ndarray:
    return np.hanning(w)


@njit(cache=True, fastmath={"reassoc"})
def _window_sum(row: np.ndarray) -> float:
    """A window's sum, vectorised (the order of its additions is fixed by the compiled code, so every
    caller gets the same rounding)."""
    s = 0.0
    for v in row:
        s += v
    return s


@njit(cache=True)
def _tapered(block: np.ndarray, taper: np.ndarray, out: np.ndarray) -> None:
    """Each window demeaned and multiplied by the taper, in one pass into ``out``."""
    w = block.shape[1]
    for r in range(block.shape[0]):
        m = _window_sum(block[r]) / w
        for i in range(w):
            out[r, i] = (block[r, i] - m) * taper[i]


@njit(cache=True)
def _abs2(f: np.ndarray, out: np.ndarray) -> None:
    """|F_k|^2 for k = 1..w/2 of each row's transform."""
    for r in range(out.shape[0]):
        for k in range(out.shape[1]):
            c = f[r, k + 1]
            out[r, k] = c.real * c.real + c.imag * c.imag


def _power(block: np.ndarray) -> np.ndarray:
    """The power at k = 1..w/2 of each (rows, w) window, demeaned and Hann-tapered: numpy's FFT between
    two compiled passes, so no other temporary of the block's size is made."""
    rows, w = block.shape
    x = np.empty((rows, w))
    _tapered(block, _taper(w), x)
    p = np.empty((rows, w // 2))
    _abs2(np.fft.rfft(x, axis=1), p)
    return p


def _log_power(p: np.ndarray) -> np.ndarray:
    """log P, vectorised by numpy (a tenth of the cost of a log per value in the compiled loop); a zero
    power's log is -inf, which the fields read as numpy would."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p)


@njit(cache=True, fastmath={"reassoc"})
def _fft_fields(p: np.ndarray, lp: np.ndarray, w: int, edges: np.ndarray, out: np.ndarray) -> None:
    """The FFT features of one window (FFT_FIELDS order) from its power P_1..P_{w/2} and log P, NaN unless
    the total power is positive. The entropy comes from sum p log p (-sum s log s = log P - sum p log p / P
    with s = p / P), so one log of the spectrum serves the entropy and the flatness (its geometric mean).
    Sums are vectorised (reassociated, in an order fixed by the compiled code); the peak is the first
    largest power, as numpy's argmax."""
    half = len(p)
    plogp = logsum = moment = 0.0
    for i in range(half):
        v = p[i]
        lv = lp[i]
        logsum += lv
        plogp += v * lv if v > 0.0 else 0.0
        moment += v * (i + 1)
    total = 0.0
    for j in range(BANDS):
        band = 0.0
        for i in range(edges[j], edges[j + 1]):
            band += p[i]
        out[j] = band
        total += band
    if not total > 0.0:
        out[:] = np.nan
        return
    best = 0
    for i in range(1, half):
        if p[i] > p[best]:
            best = i
    for j in range(BANDS):
        out[j] /= total
    out[BANDS] = (np.log(total) - plogp / total) / np.log(half)
    out[BANDS + 1] = w / (best + 1)
    out[BANDS + 2] = moment / total / half
    out[BANDS + 3] = np.exp(logsum / half) / (total / half)


@njit(cache=True)
def _fft_rows(p: np.ndarray, lp: np.ndarray, w: int, edges: np.ndarray, out: np.ndarray) -> None:
    for r in range(len(p)):
        _fft_fields(p[r], lp[r], w, edges, out[r])


def _fft_reducer(w: int):  # noqa: ANN202  (returns a reducer closure)
    """The FFT features of (rows, w) windows: numpy's FFT of the block, then each row's fields."""
    edges = _band_edges(w)

    def reduce(block: np.ndarray) -> dict[str, np.ndarray]:
        out = np.empty((len(block), len(FFT_FIELDS)))
        p = _power(block)
        _fft_rows(p, _log_power(p), w, edges, out)
        return {name: out[:, j] for j, name in enumerate(FFT_FIELDS)}

    return reduce


def _series(idx: np.ndarray, bqx: np.ndarray) -> dict[str, np.ndarray]:
    return {"ret": np.log(idx / shift(idx, 1)) * 1e4, "bqx": bqx - shift(bqx, 1)}


def compute(idx: np.ndarray, bqx: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for s, x in _series(idx, bqx).items():
        for w in FFT_WINDOWS:
            block = window_reduce(x, w, _fft_reducer(w))
            out.update({f"{s}_fft{w}_{f}": block[f] for f in FFT_FIELDS})
    out.update(wavelet_kernel().batch({"idx": idx, "bqx": bqx}))
    return {k: out[k] for k in names()}


# --- online: the wavelet kernel steps every row; the FFT features read the trailing windows ---
def _kernel_args(idx: np.ndarray, bqx: np.ndarray) -> tuple[np.ndarray, ...]:
    arrays = {"idx": idx, "bqx": bqx}
    return tuple(arrays[name] for name in wavelet_kernel().inputs)


def online_warm(t: int, idx: np.ndarray, bqx: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    """Advance the wavelet state only (the FFT features carry none): seeding uses it for early rows."""
    return wavelet_kernel().step(t, *_kernel_args(idx, bqx), state, out[_FFT_OUT:])


def online_step(t: int, idx: np.ndarray, bqx: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    used = online_warm(t, idx, bqx, state, out)
    w_max = max(FFT_WINDOWS)
    lo = max(0, t - w_max)
    windows = np.full((len(SERIES), w_max), np.nan)  # both series' last w_max values, oldest first
    for si, x in enumerate(_series(idx[lo:t + 1], bqx[lo:t + 1]).values()):
        windows[si, w_max - (t - lo):] = x[1:]
    nf = len(FFT_FIELDS)
    for wi, w in enumerate(FFT_WINDOWS):  # both series' windows in one FFT (rows are independent)
        p = _power(windows[:, w_max - w:])  # a window holding a NaN has a NaN spectrum: NaN fields
        lp = _log_power(p)
        for si in range(len(SERIES)):
            j = (si * len(FFT_WINDOWS) + wi) * nf
            _fft_fields(p[si], lp[si], w, _band_edges(w), out[j:j + nf])
    return used


KERNELS = {"spectral_features.wavelets": lambda s: wavelet_kernel()}  # precompiled with the declared tables

TABLES: dict[str, Family] = {
    "spectral_features": Family(lambda s: names(), lambda inp, s: compute(inp.idx, inp.bqx), warmup,
                                Online(("idx", "bqx"), online_step, state_size=lambda s: wavelet_kernel().state_size,
                                       init=lambda state: wavelet_kernel().init(state), warm=online_warm)),
}
