"""Column names, in one place: how every stage names and parses the columns it writes and reads.

- a feature is ``{table}.{feature}`` with the pair-free table key (``technical_idx.rsi_14``);
- a lagged candidate is ``{table}.{feature}_lag{k}``: the feature k rows back;
- a target is ``target_bqx{W}_h{H}``: BQX over W rows, H rows ahead;
- the evaluation columns beside it are ``bqx_now`` (the BQX series now) and ``fwd_ret_h{H}`` (the log
  return over the next H rows, in bps).
"""

from __future__ import annotations

from typing import NamedTuple

TIME = "ts_utc"
BQX_NOW = "bqx_now"
_LAG = "_lag"


class Column(NamedTuple):
    table: str  # the table key (``technical_idx``)
    base: str  # the unlagged feature (``technical_idx.rsi_14``)
    lag: int  # rows back; 0 for a base feature


def feature_column(table: str, feature: str) -> str:
    return f"{table}.{feature}"


def lag_name(feature: str, lag: int) -> str:
    return f"{feature}{_LAG}{lag}"


def parse(column: str) -> Column:
    """``technical_idx.rsi_14_lag60`` -> Column("technical_idx", "technical_idx.rsi_14", 60)."""
    head, sep, tail = column.rpartition(_LAG)
    lagged = bool(sep) and tail.isdigit()
    base = head if lagged else column
    lag = int(tail) if lagged else 0
    return Column(base.split(".", 1)[0], base, lag)


def base_name(column: str) -> str:
    """``technical_idx.rsi_14_lag60`` -> ``technical_idx.rsi_14``."""
    return parse(column).base


def lag_of(column: str) -> int:
    """``technical_idx.rsi_14_lag60`` -> 60; a base feature -> 0."""
    return parse(column).lag


def target_column(window: int, horizon: int) -> str:
    return f"target_bqx{window}_h{horizon}"


def fwd_return_column(horizon: int) -> str:
    return f"fwd_ret_h{horizon}"
