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

from bqx.features.windows import window_reduce

WINDOWS: tuple[int, ...] = (30, 60, 120, 240)
FIELDS: tuple[str, ...] = ("mean", "std", "skew", "kurt", "p10", "p50", "p90", "iqr", "mad", "entropy",
                           "autocorr1", "jarque_bera")
BINS = 10


def names() -> list[str]:
    return [f"w{w}_{f}" for w in WINDOWS for f in FIELDS]


def _entropy(block: np.ndarray) -> np.ndarray:
    lo, hi = block.min(axis=1), block.max(axis=1)
    span = hi - lo
    flat = span <= 0
    scaled = (block - lo[:, None]) / np.where(flat, 1.0, span)[:, None]
    bins = np.minimum((scaled * BINS).astype(np.int64), BINS - 1)
    rows = np.arange(len(block))[:, None]
    counts = np.bincount((bins + rows * BINS).ravel(), minlength=len(block) * BINS).reshape(len(block), BINS)
    p = counts / block.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1) / np.log(BINS)
    h[flat] = np.nan
    return h


def _reduce(block: np.ndarray) -> dict[str, np.ndarray]:
    w = block.shape[1]
    mean = block.mean(axis=1)
    c = block - mean[:, None]
    m2 = np.mean(c * c, axis=1)
    m3 = np.mean(c * c * c, axis=1)
    m4 = np.mean((c * c) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(m2 > 0, m3 / m2**1.5, np.nan)
        kurt = np.where(m2 > 0, m4 / m2**2 - 3.0, np.nan)
        a, b = c[:, :-1] - c[:, :-1].mean(axis=1, keepdims=True), c[:, 1:] - c[:, 1:].mean(axis=1, keepdims=True)
        den = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
        ac = np.where(den > 0, np.sum(a * b, axis=1) / den, np.nan)
    p10, p25, p50, p75, p90 = np.percentile(block, (10, 25, 50, 75, 90), axis=1)
    return {
        "mean": mean, "std": np.sqrt(m2 * w / (w - 1)), "skew": skew, "kurt": kurt, "p10": p10, "p50": p50,
        "p90": p90, "iqr": p75 - p25, "mad": np.mean(np.abs(c), axis=1), "entropy": _entropy(block),
        "autocorr1": ac, "jarque_bera": w / 6.0 * (skew**2 + kurt**2 / 4.0),
    }


def compute(x: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for w in WINDOWS:
        block = window_reduce(x, w, _reduce)
        out.update({f"w{w}_{f}": block[f] for f in FIELDS})
    return out
