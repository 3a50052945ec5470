"""Honest evaluation: every model metric next to the naive zero-forecast baseline on the same rows."""

from __future__ import annotations

import numpy as np


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - y
    sst = float(np.sum((y - y.mean()) ** 2))
    nonzero = y != 0
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1 - np.sum(err**2) / sst) if sst > 0 else float("nan"),
        "directional_accuracy": float(np.mean(np.sign(pred[nonzero]) == np.sign(y[nonzero])))
        if nonzero.any() else float("nan"),
    }


def evaluate(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Model metrics and the zero-forecast baseline's (``baseline_*``) on the same rows.

    The zero forecast's directional accuracy is undefined (it never takes a side), reported as 0.5.
    """
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    model = regression_metrics(y, pred)
    base = regression_metrics(y, np.zeros_like(y))
    base["directional_accuracy"] = 0.5
    out = {f"model_{k}": v for k, v in model.items()}
    out.update({f"baseline_zero_{k}": v for k, v in base.items()})
    out["rows"] = float(len(y))
    return out
