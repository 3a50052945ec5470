"""A month of running the plan, in dollars: processing, training, tuning, the endpoint, its A/B tests,
batch, storage.

Every line is measured time x a dated price: task seconds per pair-year from ``bench/pipeline.py``
(below), instance prices from the price file (:func:`bqx.plan.load_prices`), the run cadence from the
recurring run's cron expression, sizes from :func:`bqx.plan.disk_bytes`. The assumptions travel with
the figures (each line's ``detail``), so a reader can check them.
"""

from __future__ import annotations

import calendar
from dataclasses import asdict, dataclass

from bqx.config import Settings
from bqx.pairs import PAIRS

DEFAULT_CRON = "0 0 6 * * 1-5"  # the prod overlay's recurring training run: weekdays at 06:00
HOURS_PER_MONTH = 730.0  # 365 x 24 / 12
GB = 10**9

# Task time per pair-year of one-minute bars, in seconds: `python bench/pipeline.py` (28 pairs x 259
# days), 2026-12-04 (session 20, training.fit_stride 4), two tasks at a time on 2 cores, CatBoost on 2
# threads: each stage's task time summed over its tasks / 28 (ingest, panel and deploy run once per run).
TASK_SECONDS_PER_PAIR_YEAR = {"extract": 21.2, "lag": 0.1, "select": 7.9, "train": 26.8, "drift": 4.6}
TASK_SECONDS_PER_RUN = {"ingest": 4.3, "panel": 6.2, "deploy": 0.5}
# Batch prediction of one month of one pair's bars with a 250-feature model: `python bench/predict.py`
# (28 pairs x 22 trading days in one process), 2026-12-02 (session 10).
PREDICT_SECONDS_PER_PAIR_MONTH = 1.14
# Amazon S3 Standard, first 50 TB, us-east-1: USD per GB-month, as of 2024-06 (AWS S3 pricing page;
# recalled and not re-verified: check before budgeting)
S3_USD_PER_GB_MONTH = 0.023
S3_AS_OF = "2024-06"


@dataclass(frozen=True)
class CostLine:
    name: str
    usd: float  # per month
    detail: str  # how it was computed, with the assumptions


@dataclass(frozen=True)
class MonthlyCost:
    lines: list[CostLine]
    runs_per_month: float
    years: float

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def as_dict(self) -> dict:
        return {"lines": [asdict(line) for line in self.lines], "total_usd": self.total,
                "runs_per_month": self.runs_per_month, "years": self.years}


def _field(spec: str, lo: int, hi: int, what: str) -> set[int]:
    """Values of one cron field: ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n`` and comma lists of them."""
    values: set[int] = set()
    for part in spec.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body in ("*", "?"):
                start, end = lo, hi
            elif "-" in body:
                start, end = (int(v) for v in body.split("-", 1))
            else:
                start = int(body)
                end = hi if step_text else start
        except ValueError:
            raise ValueError(f"cron {what} field {spec!r}: expected *, */n, a, a-b or a-b/n") from None
        if step < 1 or start < lo or end > hi or start > end:
            raise ValueError(f"cron {what} field {spec!r}: values must lie in {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return values


def runs_per_month(cron: str, year: int = 2026) -> float:
    """Average runs per month of a six-field KFP cron expression (second minute hour day-of-month month
    day-of-week, day-of-week 0 = Sunday), counted over a whole year. As in cron, when both day fields
    are restricted a day matching either one runs."""
    fields = cron.split()
    if len(fields) != 6:
        raise ValueError(f"cron {cron!r}: KFP takes six fields (second minute hour day-of-month month "
                         f"day-of-week), got {len(fields)}")
    sec, minute, hour, dom, month, dow = fields
    per_day = (len(_field(sec, 0, 59, "second")) * len(_field(minute, 0, 59, "minute"))
               * len(_field(hour, 0, 23, "hour")))
    days, months = _field(dom, 1, 31, "day-of-month"), _field(month, 1, 12, "month")
    weekdays = {d % 7 for d in _field(dow, 0, 7, "day-of-week")}
    dom_any, dow_any = dom in ("*", "?"), dow in ("*", "?")
    count = 0
    for m in months:
        for d in range(1, calendar.monthrange(year, m)[1] + 1):
            wd = (calendar.weekday(year, m, d) + 1) % 7  # Python: Monday 0; cron: Sunday 0
            in_dom, in_dow = d in days, wd in weekdays
            if (in_dom and in_dow) if (dom_any or dow_any) else (in_dom or in_dow):
                count += 1
    return count * per_day / 12.0


def _price(prices: list, name: str) -> float:
    for p in prices:
        if p.name == name:
            return p.usd_per_hour
    raise ValueError(f"instance type {name} is not in the price file: add it (bqx plan --prices FILE)")


def monthly(settings: Settings, prices: list, processing_instance: str, runs: float, years: float = 1.0,
            tune_trials: int = 0, stored_bytes: int = 0, n_pairs: int = len(PAIRS), batch_runs: float = 0.0
            ) -> MonthlyCost:
    """The month's cost lines for ``runs`` training runs a month over ``years`` of bars per pair.

    Processing bills every data task (ingest, panel, extract, lag, select, drift, deploy) as a whole
    ``processing_instance`` for its duration, the upper bound when tasks do not share nodes; training
    bills the train task's time on ``aws.instance_type`` per pair and run (SageMaker bills the job's
    training time, not its provisioning); tuning bills ``tune_trials`` such fits per pair and run; the
    endpoint runs around the clock at ``autoscale_min`` instances (``autoscale_max`` is the ceiling in
    the detail); with ``aws.ab_candidate_percent`` every run's deploy starts an A/B test whose candidate
    variant runs ``endpoint_instance_count`` more instances for ``registry.ab_window_h`` hours (one
    test at a time: a deploy during a test waits for its verdict); batch bills ``batch_runs``
    bqx-predict runs a month, each over a month of bars of every pair, on ``processing_instance``;
    storage keeps one run's artifacts in S3."""
    a = settings.aws
    per_pair = {k: v * years for k, v in TASK_SECONDS_PER_PAIR_YEAR.items()}
    data_s = sum(v for k, v in per_pair.items() if k != "train") * n_pairs + sum(TASK_SECONDS_PER_RUN.values())
    p_proc, p_train, p_end = _price(prices, processing_instance), _price(prices, a.instance_type), \
        _price(prices, a.endpoint_instance_type)
    train_h = per_pair["train"] * n_pairs / 3600.0
    base = max(1, a.autoscale_min, a.endpoint_instance_count)
    gb = stored_bytes / GB
    batch_s = PREDICT_SECONDS_PER_PAIR_MONTH * n_pairs + TASK_SECONDS_PER_RUN["ingest"]
    ab_h, ab_detail = _ab_hours(settings, runs, p_end)
    lines = [
        CostLine("processing", runs * data_s / 3600.0 * p_proc,
                 f"{runs:.1f} runs x {data_s / 3600.0:.2f} task-hours on {processing_instance} at ${p_proc}/h"),
        CostLine("training", runs * train_h * p_train * a.instance_count,
                 f"{runs:.1f} runs x {n_pairs} jobs x {per_pair['train']:.0f} s on {a.instance_count} x "
                 f"{a.instance_type} at ${p_train}/h"),
        CostLine("tuning", runs * tune_trials * train_h * p_train * a.instance_count,
                 f"{tune_trials} trials per pair and run" if tune_trials else "no tuning trials"),
        CostLine("endpoint", HOURS_PER_MONTH * base * p_end,
                 f"{base} x {a.endpoint_instance_type} around the clock at ${p_end}/h (up to "
                 f"${HOURS_PER_MONTH * max(base, a.autoscale_max) * p_end:,.2f} at autoscale_max "
                 f"{a.autoscale_max})"),
        CostLine("ab_tests", ab_h * a.endpoint_instance_count * p_end, ab_detail),
        CostLine("batch", batch_runs * batch_s / 3600.0 * p_proc,
                 f"{batch_runs:g} bqx-predict runs x {batch_s:.0f} s (a month of {n_pairs} pairs) on "
                 f"{processing_instance} at ${p_proc}/h" if batch_runs else "no batch prediction runs"),
        CostLine("storage", gb * S3_USD_PER_GB_MONTH,
                 f"{gb:,.1f} GB in S3 Standard at ${S3_USD_PER_GB_MONTH}/GB-month ({S3_AS_OF})"),
    ]
    return MonthlyCost(lines, runs, years)


def _ab_hours(settings: Settings, runs: float, p_end: float) -> tuple[float, str]:
    """Hours a month the candidate variant runs, and how: one test per run, ``ab_window_h`` long, at
    most one at a time (so at most the whole month). With runs closer together than the window, the
    deploys during a test wait for its verdict, so not every run's models are tested: the detail says so."""
    a, window = settings.aws, settings.registry.ab_window_h
    if not a.ab_candidate_percent:
        return 0.0, "no A/B tests (aws.ab_candidate_percent = 0)"
    tests = min(runs, HOURS_PER_MONTH / window)
    hours = tests * window
    detail = (f"up to {tests:.1f} tests x {window:g} h (registry.ab_window_h): the candidate on "
              f"{a.endpoint_instance_count} x {a.endpoint_instance_type} beside the current at ${p_end}/h, "
              f"{hours:,.0f} h a month")
    if runs and HOURS_PER_MONTH / runs < window:
        detail += (f"; runs come every {HOURS_PER_MONTH / runs:.0f} h, so the deploys during a test wait for its "
                   "verdict and not every run's models are tested")
    return hours, detail


def monthly_text(cost: MonthlyCost) -> str:
    width = max(len(line.name) for line in cost.lines)
    lines = [f"monthly cost ({cost.runs_per_month:.1f} runs a month, {cost.years:g} year(s) of bars per pair; "
             "measured task times x dated prices):"]
    lines += [f"  {line.name:<{width}}  ${line.usd:>11,.2f}   {line.detail}" for line in cost.lines]
    lines.append(f"  {'total':<{width}}  ${cost.total:>11,.2f}")
    return "\n".join(lines)


__all__ = ["CostLine", "MonthlyCost", "monthly", "monthly_text", "runs_per_month"]
