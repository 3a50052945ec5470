"""Honest evaluation on the test split: every metric of the model next to two naive forecasters.

Forecasters: ``model``; ``zero`` (BQX will be 0: no momentum); ``persistence`` (BQX H rows ahead equals
BQX now). Metrics: RMSE, MAE, R2 and directional accuracy of the BQX forecast, and a trading check:
a long/short position from the forecast's sign (``bqx.targets.position_sign``: a high v1 BQX means a
falling price), opened every H rows (non-overlapping), earning the forward log return over H rows
minus a round-trip cost, summarised as an annualised Sharpe ratio with its standard error (a few
dozen trades give an error of +-10 or more: read the error before the ratio), mean P&L per trade and
hit rate.
The zero forecaster never trades (Sharpe 0); its directional accuracy is undefined and shown as 0.5.
"""

from __future__ import annotations

import numpy as np

FORECASTERS: tuple[str, ...] = ("model", "zero", "persistence")
ROWS_PER_YEAR = 259 * 1440


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - y
    sst = float(np.sum((y - y.mean()) ** 2))
    nonzero = (y != 0) & (pred != 0)
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1 - np.sum(err**2) / sst) if sst > 0 else float("nan"),
        "directional_accuracy": float(np.mean(np.sign(pred[nonzero]) == np.sign(y[nonzero])))
        if nonzero.any() else 0.5,
    }


def trading_metrics(forecast: np.ndarray, fwd_ret_bps: np.ndarray, horizon: int, sign: int,
                    cost_bps: float) -> dict[str, float]:
    """Non-overlapping trades every ``horizon`` rows; P&L in bps after a round-trip cost."""
    f, r = forecast[::horizon], fwd_ret_bps[::horizon]
    pos = sign * np.sign(f)
    pnl = pos * r - cost_bps * np.abs(pos)
    trades = int(np.count_nonzero(pos))
    sd = float(np.std(pnl, ddof=1)) if len(pnl) > 1 else 0.0
    per_trade = float(np.mean(pnl) / sd) if sd > 0 and trades else 0.0
    annual = np.sqrt(ROWS_PER_YEAR / horizon)
    # standard error of the Sharpe ratio (Lo 2002, iid returns): sqrt((1 + S^2 / 2) / N), annualised
    se = float(np.sqrt((1 + per_trade**2 / 2) / len(pnl)) * annual) if len(pnl) > 1 else float("nan")
    hits = float(np.mean(pnl[pos != 0] > 0)) if trades else 0.0
    return {"sharpe": per_trade * annual, "sharpe_se": se,
            "pnl_per_trade_bps": float(np.mean(pnl[pos != 0])) if trades else 0.0, "hit_rate": hits,
            "trades": float(trades)}


def evaluate(y: np.ndarray, pred: np.ndarray, bqx_now: np.ndarray | None = None,
             fwd_ret_bps: np.ndarray | None = None, horizon: int = 60, sign: int = -1,
             cost_bps: float = 1.0) -> dict[str, float]:
    """``{forecaster}_{metric}`` for the model and the naive forecasters on the same rows."""
    y = np.asarray(y, dtype=np.float64)
    forecasts = {"model": np.asarray(pred, dtype=np.float64), "zero": np.zeros_like(y)}
    if bqx_now is not None:
        forecasts["persistence"] = np.asarray(bqx_now, dtype=np.float64)
    out: dict[str, float] = {"rows": float(len(y))}
    for name, f in forecasts.items():
        for k, v in regression_metrics(y, f).items():
            out[f"{name}_{k}"] = v
        if fwd_ret_bps is not None:
            for k, v in trading_metrics(f, np.asarray(fwd_ret_bps, dtype=np.float64), horizon, sign,
                                        cost_bps).items():
                out[f"{name}_{k}"] = v
    out["zero_directional_accuracy"] = 0.5
    return out


def model_card(pair: str, metrics: dict[str, float], meta: dict, selection: dict, cost_bps: float) -> str:
    """Markdown model card: the metric table with its baselines, the data and the provenance."""
    names = [n for n in FORECASTERS if f"{n}_rmse" in metrics]
    rows = [
        ("RMSE", "rmse", "{:.4g}"), ("MAE", "mae", "{:.4g}"), ("R2", "r2", "{:.3f}"),
        ("directional accuracy", "directional_accuracy", "{:.1%}"),
        ("Sharpe (annualised, after cost)", "sharpe", "{:.2f}"), ("Sharpe standard error", "sharpe_se", "{:.2f}"),
        ("P&L per trade (bps)", "pnl_per_trade_bps", "{:.2f}"), ("hit rate", "hit_rate", "{:.1%}"),
        ("trades", "trades", "{:.0f}"),
    ]
    lines = [f"# Model card: {pair}", "", f"Target `{selection['target']}`: BQX over "
             f"{selection['settings']['target_window']} rows, {selection['settings']['horizons'][0]} rows ahead "
             f"(BQX {selection['settings']['bqx_version']}). Test split: {metrics['rows']:.0f} rows.", "",
             "| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, key, fmt in rows:
        if f"model_{key}" in metrics:
            lines.append(f"| {label} | " + " | ".join(fmt.format(metrics[f'{n}_{key}']) for n in names) + " |")
    counts = selection["domain_counts"]
    h = selection["settings"]["horizons"][0]
    lines += ["", f"Trading check: sign of the forecast, one position every {h} rows, "
              f"round-trip cost {cost_bps} bps. Zero never trades; persistence trades today's BQX.", "",
              f"Features: {len(selection['features'])} of {selection['candidates']} candidates "
              f"(idx {counts['idx']}, bqx {counts['bqx']}, cross {counts['cross']}).",
              f"Training: {meta.get('train_rows')} rows, validation {meta.get('validation_rows')} rows, best iteration "
              f"{meta.get('best_iteration')}, {meta.get('train_seconds')} s.",
              f"Provenance: catalog {selection['catalog_version']}, settings {selection['settings_hash']}."]
    return "\n".join(lines) + "\n"
