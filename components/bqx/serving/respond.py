"""From predicted BQX to the response: a BUY/SELL/HOLD signal and a prediction interval.

Signal: BQX v1 is backward momentum (past minus now), so a high predicted value means the price is
expected to fall (``bqx.targets.position_sign``). A forecast trades only when its size exceeds the
threshold, by default the evaluation's round-trip cost expressed in BQX units (percent of price):
``eval_cost_bps / 100``. Interval: the prediction plus the validation residual quantiles the training
entrypoint stored in meta.json (5% and 95%: a 90% interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bqx.targets import position_sign

LOW_Q, HIGH_Q = "0.05", "0.95"


@dataclass(frozen=True)
class SignalRule:
    threshold: float  # |predicted BQX| above this trades
    sign: int  # +1: high BQX means buy (v3), -1: high BQX means sell (v1)

    @classmethod
    def for_model(cls, selection: dict, threshold: float | None) -> SignalRule:
        settings = selection.get("settings", {})
        if threshold is None:
            threshold = float(settings.get("eval_cost_bps", 1.0)) / 100.0
        return cls(float(threshold), position_sign(str(settings.get("bqx_version", "v1"))))

    def signals(self, predictions: np.ndarray) -> list[str]:
        direction = self.sign * np.sign(predictions)
        trade = np.abs(predictions) > self.threshold
        pairs = zip(trade, direction, strict=True)
        return ["BUY" if t and d > 0 else "SELL" if t and d < 0 else "HOLD" for t, d in pairs]


def intervals(predictions: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray] | None:
    q = meta.get("validation_residual_quantiles") or {}
    if LOW_Q not in q or HIGH_Q not in q:
        return None
    return predictions + float(q[LOW_Q]), predictions + float(q[HIGH_Q])


def response(predictions: np.ndarray, rule: SignalRule, meta: dict, version: str, model_name: str,
             ts_utc: list[str] | None = None, variant: str = "") -> dict:
    bounds = intervals(predictions, meta)
    sigs = rule.signals(predictions)
    out = []
    for i, p in enumerate(predictions.tolist()):
        item: dict = {"prediction": p, "signal": sigs[i]}
        if bounds is not None:
            item["interval"] = {"lower": float(bounds[0][i]), "upper": float(bounds[1][i]), "coverage": 0.9}
        if ts_utc is not None:
            item["ts_utc"] = ts_utc[i]
        out.append(item)
    answer = {"model": model_name, "model_version": version, "pair": meta.get("pair"), "target": meta.get("target"),
              "signal_threshold": rule.threshold, "predictions": out}
    if variant:  # an A/B endpoint's variant (the container's BQX_VARIANT)
        answer["variant"] = variant
    return answer
