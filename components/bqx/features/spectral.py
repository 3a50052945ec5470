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
