"""The per-pair evaluation page for the KFP UI: one self-contained HTML file with static pictures.

Equity curves of the model and both baselines after cost, predicted against realised BQX, and the
model's feature importance by domain (rate_idx / BQX / cross) with its top features, beside the
metric tables of the model card. Pictures are PNGs drawn by matplotlib and inlined as base64, so the
page needs no script and no network and stays well under 2 MB.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from bqx.pictures import png_uri, pyplot
from bqx.train.evaluate import FORECASTERS, metric_rows, period_pnl, positions

COLOURS = {"model": "#1f77b4", "zero": "#7f7f7f", "persistence": "#ff7f0e", "idx": "#2ca02c", "bqx": "#d62728",
           "cross": "#9467bd"}
SCATTER_POINTS = 4_000


def equity_curves(rows: pd.DataFrame, horizon: int, sign: int, cost_bps: float, fwd: str, now: str) -> str:
    """Cumulative P&L (bps, after cost) of each forecaster's trades over the evaluated rows."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    when = pd.to_datetime(rows["ts_utc"]).to_numpy()[::horizon] if "ts_utc" in rows else None
    forecasts = {"model": rows["prediction"].to_numpy(), "zero": np.zeros(len(rows)),
                 "persistence": rows[now].to_numpy()}
    for name in FORECASTERS:
        pnl = period_pnl(positions(forecasts[name], horizon, sign), rows[fwd].to_numpy()[::horizon], cost_bps)
        x = when if when is not None else np.arange(len(pnl))
        ax.plot(x, np.cumsum(pnl), label=name, color=COLOURS[name], lw=1.4)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel("cumulative P&L after cost (bps)")
    ax.set_title("Equity: out-of-sample trades")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return png_uri(fig)


def scatter(y: np.ndarray, pred: np.ndarray, seed: int) -> str:
    """Predicted against realised target (a seeded sample of at most SCATTER_POINTS rows)."""
    plt = pyplot()
    keep = np.arange(len(y))
    if len(y) > SCATTER_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), SCATTER_POINTS, replace=False))
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.scatter(y[keep], pred[keep], s=4, alpha=0.35, color=COLOURS["model"])
    lo, hi = float(np.nanmin(y[keep])), float(np.nanmax(y[keep]))
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.7, label="prediction = realised")
    ax.set_xlabel("realised BQX")
    ax.set_ylabel("predicted BQX")
    corr = float(np.corrcoef(y, pred)[0, 1]) if len(y) > 2 and np.std(pred) > 0 else float("nan")
    ax.set_title(f"Predicted vs realised (corr {corr:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return png_uri(fig)


def importance_chart(importance: dict[str, float], domain_of: dict[str, str], top: int = 20) -> str:
    """Share of the model's feature importance per domain, and its top features coloured by domain."""
    plt = pyplot()
    total = sum(importance.values()) or 1.0
    domains = ["idx", "bqx", "cross"]
    share = [sum(v for f, v in importance.items() if domain_of[f] == d) / total for d in domains]
    best = sorted(importance, key=importance.__getitem__, reverse=True)[:top][::-1]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1, 2.6]})
    a.bar(["rate_idx", "BQX", "cross"], share, color=[COLOURS[d] for d in domains])
    a.set_ylabel("share of importance")
    a.set_title("By domain")
    b.barh(range(len(best)), [importance[f] / total for f in best], color=[COLOURS[domain_of[f]] for f in best])
    b.set_yticks(range(len(best)), [f[:48] for f in best], fontsize=7)
    b.set_title(f"Top {len(best)} features")
    fig.tight_layout()
    return png_uri(fig)


def _table_html(metrics: dict[str, float], prefix: str) -> str:
    names = [n for n in FORECASTERS if f"{prefix}{n}_rmse" in metrics]
    head = "".join(f"<th>{n}</th>" for n in names)
    body = "".join(f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                   + "</tr>" for label, cells in metric_rows(metrics, prefix))
    return f"<table><tr><th>metric</th>{head}</tr>{body}</table>"


def evaluation_page(pair: str, metrics: dict[str, float], pictures: dict[str, str], notes: list[str]) -> str:
    """The whole page: headline tables, then each picture with its caption."""
    title = f"bqx evaluation: {html.escape(pair)}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
             "<style>body{font-family:sans-serif;margin:1.2em;max-width:1100px}table{border-collapse:collapse;"
             "margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,"
             "th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee;margin:0.4em 0}</style>",
             f"</head><body><h1>Evaluation: {html.escape(pair)}</h1>"]
    if "wf_rows" in metrics:
        parts.append(f"<h2>Walk-forward, {metrics['wf_folds']:.0f} purged folds, {metrics['wf_rows']:.0f} "
                     f"out-of-sample rows</h2>{_table_html(metrics, 'wf_')}")
    parts.append(f"<h2>Deployed model, test split ({metrics['rows']:.0f} rows)</h2>{_table_html(metrics, '')}")
    for title, uri in pictures.items():
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='{uri}'>")
    parts += [f"<p>{html.escape(n)}</p>" for n in notes]
    parts.append("</body></html>")
    return "".join(parts)
