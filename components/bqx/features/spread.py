"""``spread_features``: the cost of trading (6 features).

``spread_bps``: (ask - bid) / mid x 10^4 where the source has quotes, otherwise a high-low proxy, half
the bar's range in bps (an upper bound of the effective spread; ``is_quoted`` says which);
``spread_bps_ma60`` and ``spread_bps_max60`` over 60 rows, ``spread_z60``; ``hl_range_bps`` =
(high - low) / close x 10^4; ``is_quoted`` (1 with bid/ask, 0 on the proxy).
"""

from __future__ import annotations

import numpy as np

from bqx.features.rolling import rolling_max, rolling_mean, rolling_std, safe_div

NAMES: tuple[str, ...] = ("spread_bps", "spread_bps_ma60", "spread_bps_max60", "spread_z60", "hl_range_bps",
                          "is_quoted")


def names() -> list[str]:
    return list(NAMES)


def compute(h: np.ndarray, lo: np.ndarray, c: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> dict[str, np.ndarray]:
    hl = (h - lo) / c * 1e4
    quoted = np.isfinite(bid) & np.isfinite(ask)
    mid = (bid + ask) / 2
    spread = np.where(quoted, (ask - bid) / np.where(quoted, mid, 1.0) * 1e4, hl / 2)
    ma = rolling_mean(spread, 60)
    return {
        "spread_bps": spread, "spread_bps_ma60": ma, "spread_bps_max60": rolling_max(spread, 60),
        "spread_z60": safe_div(spread - ma, rolling_std(spread, 60)), "hl_range_bps": hl,
        "is_quoted": quoted.astype(np.float64),
    }
