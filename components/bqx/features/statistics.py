"""``statistics_bqx``: rolling distribution statistics of the primary BQX series (48 features).

For W in (30, 60, 120, 240), each over the trailing W values:
``mean std`` (sample, ddof 1), ``skew`` (biased moment ratio m3 / m2^1.5), ``kurt`` (excess, m4 / m2^2 - 3),
``p10 p50 p90`` (linear-interpolation percentiles), ``iqr`` (p75 - p25), ``mad`` (mean absolute
deviation from the window mean), ``entropy`` (Shannon entropy of a 10-bin histogram spanning the
window's range, divided by ln 10 so it lies in [0, 1]; NaN for a flat window), ``autocorr1`` (Pearson
correlation of consecutive values inside the window) and ``jarque_bera`` = W/6 (skew^2 + kurt^2 / 4).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bqx.features import primary
from bqx.features.family import Family, Online
from bqx.features.rolling import first_valid

WINDOWS: tuple[int, ...] = (30, 60, 120, 240)
FIELDS: tuple[str, ...] = ("mean", "std", "skew", "kurt", "p10", "p50", "p90", "iqr", "mad", "entropy",
                           "autocorr1", "jarque_bera")
BINS = 10


def names() -> list[str]:
    return [f"w{w}_{f}" for w in WINDOWS for f in FIELDS]


@njit(cache=True)
def _insert(sw: np.ndarray, size: int, value: float) -> None:
    pos = np.searchsorted(sw[:size], value)
    sw[pos + 1:size + 1] = sw[pos:size].copy()
    sw[pos] = value


@njit(cache=True)
def _remove(sw: np.ndarray, size: int, value: float) -> None:
    pos = np.searchsorted(sw[:size], value)
    sw[pos:size - 1] = sw[pos + 1:size].copy()


@njit(cache=True)
def _pct(sw: np.ndarray, w: int, q: float) -> float:
    pos = q * (w - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, w - 1)
    return sw[lo] + (pos - lo) * (sw[hi] - sw[lo])


@njit(cache=True)
def _window_row(win: np.ndarray, sw: np.ndarray, w: int, counts: np.ndarray, row: np.ndarray) -> None:
    """The 12 statistics of one window ``win`` whose values, sorted, are ``sw[:w]``."""
    mean = win.mean()
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    mad = 0.0
    for v in win:
        c = v - mean
        c2 = c * c
        m2 += c2
        m3 += c2 * c
        m4 += c2 * c2
        mad += abs(c)
    m2 /= w
    m3 /= w
    m4 /= w
    row[0] = mean
    row[1] = np.sqrt(m2 * w / (w - 1))
    if m2 > 0:
        row[2] = m3 / m2**1.5
        row[3] = m4 / (m2 * m2) - 3.0
        row[11] = w / 6.0 * (row[2] ** 2 + row[3] ** 2 / 4.0)
    row[4] = _pct(sw, w, 0.10)
    row[5] = _pct(sw, w, 0.50)
    row[6] = _pct(sw, w, 0.90)
    row[7] = _pct(sw, w, 0.75) - _pct(sw, w, 0.25)
    row[8] = mad / w
    bins = len(counts)
    lo, hi = sw[0], sw[w - 1]
    if hi > lo:
        counts[:] = 0.0
        for v in win:
            k = int((v - lo) / (hi - lo) * bins)
            counts[min(k, bins - 1)] += 1.0
        h = 0.0
        for cnt in counts:
            if cnt > 0:
                p = cnt / w
                h -= p * np.log(p)
        row[9] = h / np.log(bins)
    ma = win[:-1].mean()
    mb = win[1:].mean()
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for i in range(w - 1):
        a = win[i] - ma
        b = win[i + 1] - mb
        sab += a * b
        saa += a * a
        sbb += b * b
    if saa > 0 and sbb > 0:
        row[10] = sab / np.sqrt(saa * sbb)


@njit(cache=True)
def _rolling_stats(x: np.ndarray, w: int, bins: int) -> np.ndarray:
    """One pass over the series keeping the window sorted (percentiles in O(1) after an O(W) update);
    moments, MAD, autocorrelation and entropy are computed exactly from each window."""
    n = len(x)
    out = np.full((n, 12), np.nan)
    sw = np.empty(w + 1)
    counts = np.zeros(bins)
    for t in range(n):
        if t >= w:
            _remove(sw, w, x[t - w])
            _insert(sw, w - 1, x[t])
        else:
            _insert(sw, t, x[t])
        if t < w - 1:
            continue
        _window_row(x[t - w + 1:t + 1], sw, w, counts, out[t])
    return out


def compute(x: np.ndarray) -> dict[str, np.ndarray]:
    start = first_valid(x)
    seg = np.ascontiguousarray(x[start:], dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        block = np.full((len(x), len(FIELDS)), np.nan)
        if len(seg) >= w:
            block[start:] = _rolling_stats(seg, w, BINS)
        out.update({f"w{w}_{f}": block[:, j] for j, f in enumerate(FIELDS)})
    return out


# --- online: one row at a time ---


@njit(cache=True)
def online_step(t: int, x: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    """Row t of every window's statistics, sorting the window (the batch keeps it sorted as it slides)."""
    counts = np.zeros(BINS)
    for i, w in enumerate(WINDOWS):
        row = out[len(FIELDS) * i:len(FIELDS) * (i + 1)]
        row[:] = np.nan
        if t - w + 1 < 0:
            continue
        win = x[t - w + 1:t + 1]
        if np.isnan(win).any():
            continue
        _window_row(win, np.sort(win), w, counts, row)
    return 0


TABLES: dict[str, Family] = {
    "statistics_bqx": Family(lambda s: names(), lambda inp, s: compute(inp.bqx),
                             lambda s: primary.primary_warmup(s) + max(WINDOWS),
                             Online(("bqx",), online_step)),
}
