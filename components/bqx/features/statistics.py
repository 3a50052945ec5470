"""``statistics_bqx``: rolling distribution statistics of the primary BQX series (48 features).

For W in (30, 60, 120, 240), each over the trailing W values:
``mean std`` (sample, ddof 1), ``skew`` (biased moment ratio m3 / m2^1.5), ``kurt`` (excess, m4 / m2^2 - 3),
``p10 p50 p90`` (linear-interpolation percentiles), ``iqr`` (p75 - p25), ``mad`` (mean absolute
deviation from the window mean), ``entropy`` (Shannon entropy of a 10-bin histogram spanning the
window's range, divided by ln 10 so it lies in [0, 1]; NaN for a flat window), ``autocorr1`` (Pearson
correlation of consecutive values inside the window) and ``jarque_bera`` = W/6 (skew^2 + kurt^2 / 4).
Skew, kurtosis and Jarque-Bera are NaN for a flat window.
"""

from __future__ import annotations

import numpy as np

from bqx.features.family import from_spec
from bqx.features.spec import (
    Expr,
    Table,
    compile_table,
    sdiv,
    series,
    sqrt,
    wentropy,
    wmad,
    wmean,
    wmoments,
    wquantile,
)

WINDOWS: tuple[int, ...] = (30, 60, 120, 240)
BINS = 10


def table(x: Expr) -> Table:
    t: Table = {}
    for w in WINDOWS:
        m2, m3, m4, autocorr1 = wmoments(x, w)
        skew, kurt = sdiv(m3, m2 * sqrt(m2)), sdiv(m4, m2 * m2) - 3.0
        t.update({
            f"w{w}_mean": wmean(x, w),
            f"w{w}_std": sqrt(m2 * (w / (w - 1))),
            f"w{w}_skew": skew,
            f"w{w}_kurt": kurt,
            f"w{w}_p10": wquantile(x, w, 0.10),
            f"w{w}_p50": wquantile(x, w, 0.50),
            f"w{w}_p90": wquantile(x, w, 0.90),
            f"w{w}_iqr": wquantile(x, w, 0.75) - wquantile(x, w, 0.25),
            f"w{w}_mad": wmad(x, w),
            f"w{w}_entropy": wentropy(x, w, BINS),
            f"w{w}_autocorr1": autocorr1,
            f"w{w}_jarque_bera": w / 6.0 * (skew * skew + kurt * kurt / 4.0),
        })
    return t


TABLES = {"statistics_bqx": from_spec(lambda s: table(series("bqx")))}


def compute(x: np.ndarray) -> dict[str, np.ndarray]:
    return compile_table(table(series("bqx"))).batch({"bqx": x})
