"""Honest evaluation: every metric of the model next to two naive forecasters, on the same rows.

Forecasters: ``model``; ``zero`` (BQX will be 0: no momentum, so it never trades); ``persistence``
(BQX H rows ahead equals BQX now). Regression metrics: RMSE, MAE, R2 and directional accuracy of the
BQX forecast. Trading check: every H rows (non-overlapping periods) the position is the sign of the
forecast (``bqx.targets.position_sign``: a high v1 BQX means a falling price), held for H rows and
earning the forward log return; every change of position pays half the round-trip cost per unit
(entering or leaving pays half, a flip pays a whole round trip), and the book is closed at the end.

Summaries of the per-period P&L: the Sharpe ratio annualised from the bar interval (periods per year
= 259 trading days x 86,400 s / interval / H) with its standard error (Lo 2002, iid periods:
sqrt((1 + S^2 / 2) / N)); it is reported only with at least ``MIN_TRADES`` periods in the market
(else NaN, shown "n/a (N trades)"), because fewer give an error larger than any plausible ratio.
Sortino (downside deviation), maximum drawdown of the cumulative P&L (bps), profit factor (gains over
losses; NaN without losses), turnover (position units traded per period) and the average holding
period (bars a position is held, consecutive periods of the same sign joined).
"""

from __future__ import annotations

import math

import numpy as np

FORECASTERS: tuple[str, ...] = ("model", "zero", "persistence")
TRADING_DAYS_PER_YEAR = 259
MIN_TRADES = 30


def bars_per_year(interval_s: int) -> float:
    """Bars in a trading year of 259 days around the clock (FX trades 24 hours, 5 days a week)."""
    return TRADING_DAYS_PER_YEAR * 86_400 / interval_s


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


def positions(forecast: np.ndarray, horizon: int, sign: int) -> np.ndarray:
    """The position of each non-overlapping H-row period: the sign of the forecast at its first row."""
    return sign * np.sign(np.nan_to_num(forecast[::horizon]))


def period_pnl(pos: np.ndarray, period_ret_bps: np.ndarray, cost_bps: float) -> np.ndarray:
    """Each period's P&L in bps after the cost of changing into its position (and out of the last)."""
    if len(pos) == 0:
        return np.zeros(0)
    change = np.abs(np.diff(np.concatenate([[0.0], pos, [0.0]])))
    cost = cost_bps / 2 * change
    cost[-2] += cost[-1]  # closing the book is charged to the last period
    return pos * np.nan_to_num(period_ret_bps) - cost[:-1]


def holding_periods(pos: np.ndarray) -> np.ndarray:
    """Lengths (in periods) of the runs of one nonzero position."""
    runs, current, length = [], 0.0, 0
    for p in pos:
        if p != 0 and p == current:
            length += 1
            continue
        if length:
            runs.append(length)
        current, length = p, (1 if p != 0 else 0)
    if length:
        runs.append(length)
    return np.asarray(runs, dtype=np.float64)


def trading_metrics(forecast: np.ndarray, fwd_ret_bps: np.ndarray, horizon: int, sign: int, cost_bps: float,
                    interval_s: int = 60) -> dict[str, float]:
    """The trading check of one forecaster (see the module docstring); NaN where a figure is undefined."""
    pos = positions(forecast, horizon, sign)
    pnl = period_pnl(pos, fwd_ret_bps[::horizon], cost_bps)
    n, trades = len(pnl), int(np.count_nonzero(pos))
    per_year = bars_per_year(interval_s) / horizon
    nan = float("nan")
    sd = float(np.std(pnl, ddof=1)) if n > 1 else 0.0
    enough = trades >= MIN_TRADES and sd > 0
    per_period = float(np.mean(pnl) / sd) if enough else nan
    downside = float(np.sqrt(np.mean(np.minimum(pnl, 0.0) ** 2))) if n else 0.0
    equity = np.cumsum(pnl)
    drawdown = float(np.max(np.maximum.accumulate(np.concatenate([[0.0], equity]))[1:] - equity)) if n else 0.0
    gains, losses = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    runs = holding_periods(pos)
    return {
        "sharpe": per_period * math.sqrt(per_year),
        "sharpe_se": math.sqrt((1 + per_period**2 / 2) / n) * math.sqrt(per_year) if enough else nan,
        "sortino": float(np.mean(pnl) / downside * math.sqrt(per_year)) if enough and downside > 0 else nan,
        "max_drawdown_bps": drawdown,
        "profit_factor": gains / losses if trades and losses > 0 else nan,
        "turnover": float(np.abs(np.diff(np.concatenate([[0.0], pos]))).mean()) if n else 0.0,
        "avg_holding_bars": float(runs.mean() * horizon) if len(runs) else 0.0,
        "pnl_per_trade_bps": float(pnl.sum() / trades) if trades else 0.0,
        "total_pnl_bps": float(pnl.sum()),
        "hit_rate": float(np.mean(pnl[pos != 0] > 0)) if trades else nan,
        "trades": float(trades),
        "periods": float(n),
    }


def forecasts_of(y: np.ndarray, pred: np.ndarray, bqx_now: np.ndarray | None) -> dict[str, np.ndarray]:
    out = {"model": np.asarray(pred, dtype=np.float64), "zero": np.zeros_like(y)}
    if bqx_now is not None:
        out["persistence"] = np.asarray(bqx_now, dtype=np.float64)
    return out


def evaluate(y: np.ndarray, pred: np.ndarray, bqx_now: np.ndarray | None = None,
             fwd_ret_bps: np.ndarray | None = None, horizon: int = 60, sign: int = -1,
             cost_bps: float = 1.0, interval_s: int = 60) -> dict[str, float]:
    """``{forecaster}_{metric}`` for the model and the naive forecasters on the same rows."""
    y = np.asarray(y, dtype=np.float64)
    out: dict[str, float] = {"rows": float(len(y))}
    for name, f in forecasts_of(y, pred, bqx_now).items():
        for k, v in regression_metrics(y, f).items():
            out[f"{name}_{k}"] = v
        if fwd_ret_bps is not None:
            for k, v in trading_metrics(f, np.asarray(fwd_ret_bps, dtype=np.float64), horizon, sign, cost_bps,
                                        interval_s).items():
                out[f"{name}_{k}"] = v
    out["zero_directional_accuracy"] = 0.5
    return out


def sharpe_text(metrics: dict[str, float], forecaster: str, prefix: str = "") -> str:
    """``0.42 +- 0.31`` or ``n/a (12 trades)``: a Sharpe ratio is never shown without its error."""
    s = metrics.get(f"{prefix}{forecaster}_sharpe", float("nan"))
    if not math.isfinite(s):
        return f"n/a ({metrics.get(f'{prefix}{forecaster}_trades', 0):.0f} trades)"
    return f"{s:.2f} +- {metrics[f'{prefix}{forecaster}_sharpe_se']:.2f}"


def headline(m: dict[str, float]) -> str:
    """One line of a model's evaluation: walk-forward figures when there are folds, else the test split."""
    p = "wf_" if "wf_model_rmse" in m else ""
    return (f"{'walk-forward' if p else 'test'} RMSE {m[p + 'model_rmse']:.4g} (zero {m[p + 'zero_rmse']:.4g}, "
            f"persistence {m[p + 'persistence_rmse']:.4g}); direction {m[p + 'model_directional_accuracy']:.1%}; "
            f"Sharpe after cost {sharpe_text(m, 'model', p)} (persistence {sharpe_text(m, 'persistence', p)})")


ROWS: tuple[tuple[str, str, str], ...] = (
    ("RMSE", "rmse", "{:.4g}"), ("MAE", "mae", "{:.4g}"), ("R2", "r2", "{:.3f}"),
    ("directional accuracy", "directional_accuracy", "{:.1%}"),
    ("Sharpe (annualised, after cost) +- s.e.", "sharpe", ""), ("Sortino (annualised)", "sortino", "{:.2f}"),
    ("max drawdown (bps)", "max_drawdown_bps", "{:.1f}"), ("profit factor", "profit_factor", "{:.2f}"),
    ("turnover (units per period)", "turnover", "{:.2f}"), ("average holding (bars)", "avg_holding_bars", "{:.0f}"),
    ("P&L per trade (bps)", "pnl_per_trade_bps", "{:.2f}"), ("hit rate", "hit_rate", "{:.1%}"),
    ("trades", "trades", "{:.0f}"),
)


def metric_rows(metrics: dict[str, float], prefix: str = "") -> list[tuple[str, list[str]]]:
    """(label, one cell per forecaster) for every metric present; undefined figures read ``n/a``."""
    names = [n for n in FORECASTERS if f"{prefix}{n}_rmse" in metrics]
    rows = []
    for label, key, fmt in ROWS:
        if f"{prefix}model_{key}" not in metrics:
            continue
        cells = []
        for n in names:
            v = metrics[f"{prefix}{n}_{key}"]
            cells.append(sharpe_text(metrics, n, prefix) if key == "sharpe" else
                         (fmt.format(v) if math.isfinite(v) else "n/a"))
        rows.append((label, cells))
    return rows


def _table(metrics: dict[str, float], prefix: str) -> list[str]:
    names = [n for n in FORECASTERS if f"{prefix}{n}_rmse" in metrics]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in metric_rows(metrics, prefix)]
    return lines


def model_card(pair: str, metrics: dict[str, float], meta: dict, selection: dict, cost_bps: float) -> str:
    """Markdown model card: walk-forward and test-split tables with their baselines, data and provenance."""
    s = selection["settings"]["features"]
    interval = int(metrics.get("bar_interval_s", 60))
    lines = [f"# Model card: {pair}", "", f"Target `{selection['target']}`: BQX over {s['target_window']} bars, "
             f"{s['horizons'][0]} bars ahead (BQX {s['bqx_version']}), {interval // 60}-minute bars."]
    if "wf_rows" in metrics:
        lines += ["", f"## Walk-forward evaluation ({metrics['wf_folds']:.0f} purged folds, expanding window, "
                  f"{metrics['wf_rows']:.0f} out-of-sample rows pooled)", "", *_table(metrics, "wf_")]
    lines += ["", f"## Deployed model on the test split ({metrics['rows']:.0f} rows)", "", *_table(metrics, "")]
    counts = selection["domain_counts"]
    h = s["horizons"][0]
    lines += ["", f"Trading check: sign of the forecast, one position per {h}-bar period, half the round-trip "
              f"cost of {cost_bps} bps per unit of position change. Zero never trades; persistence trades "
              f"today's BQX. A Sharpe ratio needs at least {MIN_TRADES} trades and is shown with its standard "
              "error; annualised from the bar interval.", "",
              f"Features: {len(selection['features'])} of {selection['candidates']} candidates "
              f"(idx {counts['idx']}, bqx {counts['bqx']}, cross {counts['cross']}).",
              f"Training: {meta.get('train_rows')} rows, validation {meta.get('validation_rows')} rows, best iteration "
              f"{meta.get('best_iteration')}, {meta.get('train_seconds')} s.",
              f"Provenance: catalog {selection['catalog_version']}, settings {selection['settings_hash']}."]
    return "\n".join(lines) + "\n"
