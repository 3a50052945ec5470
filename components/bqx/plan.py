"""``bqx plan``: what a run computes and needs, derived from the catalog and the settings.

Counts per table and domain, lag candidates, the selection quota, bytes per pair-year at each stage,
the working set of the heaviest stage and the cheapest instance from the price file that holds it.
Nothing here is typed twice: counts come from :mod:`bqx.catalog`, sizes from counts x rows x dtype.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bqx.catalog import DOMAINS, Catalog
from bqx.config import STAGE_SECTIONS, Settings
from bqx.costs import DEFAULT_CRON
from bqx.extract import IN_MEMORY_BYTES
from bqx.lag import COLUMN_BATCH
from bqx.pairs import PAIRS
from bqx.select import effective_quota

ROWS_PER_PAIR_YEAR = 259 * 1440  # open-market minutes in a year: 5 x 24 h a week, less holidays
GIB = 1024**3
F32, F64, TS = 4, 8, 8
HEADROOM = 1.5  # instance memory >= working set x this
PROCESS_BASE = int(0.75 * 1024**3)  # interpreter + numpy/pandas/pyarrow/catboost (bench/selection.py, lag stage)


@dataclass(frozen=True)
class Instance:
    region: str
    name: str
    vcpu: int
    memory_gib: float
    usd_per_hour: float
    as_of: str
    source: str


def load_prices(path: str | Path | None = None) -> list[Instance]:
    text = Path(path).read_text() if path else resources.files("bqx").joinpath("data/instance_prices.csv").read_text()
    rows = csv.reader(line for line in io.StringIO(text) if line.strip() and not line.startswith("#"))
    return [Instance(r[0], r[1], int(r[2]), float(r[3]), float(r[4]), r[5], r[6]) for r in rows]


@dataclass(frozen=True)
class Sizes:
    """Bytes per pair-year at each stage's output, and the working set of each stage."""

    bars: int
    panel: int
    features: int
    candidates: int  # if every candidate were materialised (the lag stage never does)
    selected: int
    working_set: dict[str, int]


def sizes(settings: Settings, rows: int = ROWS_PER_PAIR_YEAR, n_pairs: int = len(PAIRS)) -> Sizes:
    cat = Catalog(settings)
    counts = cat.counts()
    base, cands = counts["base"], counts["candidates"]
    bars = rows * (TS + 7 * F64)
    panel = rows * (TS + (3 * n_pairs + 16) * F64)
    features = rows * (TS + len(settings.features.horizons) * F64 + base * F32)
    candidates = rows * (TS + cands * F32)
    selected = rows * (TS + F64 + settings.selection.n_select * F32)
    largest_table = max(cat.table_counts().values())
    month = min(rows, ROWS_PER_PAIR_YEAR // 12)
    sample = min(settings.selection.sample_rows, rows) * cands * F32
    working = {
        # every pair's bars read, validated (a copy) and written
        "ingest": 3 * n_pairs * bars,
        # every pair's bars and the grid being built from them
        "panel": n_pairs * bars + 2 * panel,
        # inputs + the panel + one table in float64 while computed + the float32 block written at the end
        # (held up to IN_MEMORY_BYTES, staged per table on disk beyond)
        "extract": bars + panel + 3 * rows * largest_table * F64 + min(rows * base * F32, IN_MEMORY_BYTES),
        # lag: the target column, split and sampled
        "lag": 2 * rows * F64,
        # select: the candidates on the training-row sample, built a batch of base columns at a time,
        # then CatBoost on them (about 3x)
        "select": 2 * rows * COLUMN_BATCH * F32 + 3 * sample,
        # CatBoost holds the float data, its quantized copy and the gradients: about 3x the input
        "train": 3 * selected,
        # tune: the same fit, one trial at a time
        "tune": 3 * selected,
        # the reference and current frames, their calibration windows and Evidently's copies
        "drift": 4 * selected,
        # the model packages only
        "deploy": n_pairs * model_bytes_estimate(settings),
        # predict (a month of bars, what bqx-predict is sized for): every pair's bars and the panel, one
        # pair's tables in float64 and its model's inputs
        "predict": (n_pairs * bars + panel + 3 * rows * largest_table * F64 + 2 * selected) * month // rows,
    }
    return Sizes(bars, panel, features, candidates, selected, {k: PROCESS_BASE + v for k, v in working.items()})


# bqx serve before any model: interpreter, numpy, pandas, catboost, numba (bench/serve.py)
SERVE_PROCESS_BASE = 240 * 10**6


# Parquet bytes per raw byte of the features (LZ4 + BYTE_STREAM_SPLIT, bqx.io.PARQUET_CODEC), measured on
# a pair-year (bench/features.py: 0.67); rounded up so the disk check errs on the safe side
STORED_FRACTION = 0.7


def disk_bytes(settings: Settings, rows: int = ROWS_PER_PAIR_YEAR, n_pairs: int = len(PAIRS)) -> int:
    """What a run leaves under ``--out``: every pair's features and model, plus the bars and the panel, as
    stored. Lag and select store plans over the features (bqx.dataset), not values."""
    sz = sizes(settings, rows, n_pairs)
    per_pair = sz.features + model_bytes_estimate(settings)
    return int(STORED_FRACTION * (n_pairs * (per_pair + sz.bars) + sz.panel))


@dataclass(frozen=True)
class TaskResources:
    """What a pipeline task asks Kubernetes for: memory request = limit (a task over its working set is
    killed rather than starving its node), CPU request = the threads it runs, no CPU limit."""

    memory: str
    cpu: str


def _threads(settings: Settings, stage: str) -> int:
    """The CatBoost threads a stage runs: select's importance model and train's fits; one elsewhere."""
    return {"select": settings.selection.thread_count, "train": settings.training.thread_count}.get(stage, 1)


def task_resources(settings: Settings, rows: int = ROWS_PER_PAIR_YEAR) -> dict[str, TaskResources]:
    """Per stage, from the working sets above (a pair-year of rows by default) with :data:`HEADROOM`,
    rounded up to 256 MiB: what the compiled pipeline sets on every task."""
    out = {}
    for stage, working in sizes(settings, rows).working_set.items():
        mib = -(-int(HEADROOM * working) // (256 * 2**20)) * 256
        threads = _threads(settings, stage)
        out[stage] = TaskResources(f"{mib}Mi", str(threads))
    return out


def model_bytes_estimate(settings: Settings) -> int:
    """Memory charged to one loaded model (:func:`bqx.serving.models.charged_bytes`) before one exists:
    the .cbm holds a leaf value per leaf and a split per level for every tree, plus the feature names."""
    from bqx.serving.models import charged_bytes

    t = settings.training
    cbm = t.iterations * (2**t.depth * F64 + t.depth * 16) + settings.selection.n_select * 64
    return charged_bytes(cbm, settings.selection.n_select)


ONLINE_CODE = 20 * 10**6  # compiled online kernels, loaded on the first raw-bars request (measured)


def online_memory(settings: Settings, n_pairs: int = len(PAIRS)) -> int:
    """The online feature engine serving raw bars for ``n_pairs`` pairs: each pair's state, the market,
    the compiled kernels (sizes from the catalog's feature count and the engine's own buffer rules)."""
    from bqx.serving.engine import state_bytes

    longest_lag = settings.splits.max_lag
    per_pair, market = state_bytes(settings, len(Catalog(settings).features), longest_lag)
    return ONLINE_CODE + market + n_pairs * per_pair


def endpoint_memory(settings: Settings, per_model: int, n_models: int = len(PAIRS)) -> int:
    """One multi-model endpoint instance holding every pair's model at once, with raw-bars state."""
    return SERVE_PROCESS_BASE + n_models * per_model + online_memory(settings, n_models)


def recommend(working_set: int, prices: list[Instance]) -> Instance | None:
    fits = [p for p in prices if p.memory_gib * GIB >= HEADROOM * working_set]
    return min(fits, key=lambda p: (p.usd_per_hour, p.memory_gib)) if fits else None


def _gib(n: int) -> str:
    return f"{n / GIB:,.2f} GiB"


def plan_text(settings: Settings, prices_path: str | None = None, model_path: str | None = None) -> str:
    cat = Catalog(settings)
    counts, per_table = cat.counts(), cat.table_counts()
    f = settings.features
    lines = [f"bqx plan (profile {f.profile}, BQX {f.bqx_version}, catalog {cat.version()})", "",
             f"{'table':<30}{'domain':<8}{'count':>6}  {'lag'}"]
    for t in cat.tables:
        lines.append(f"{t.table_name('{pair}'):<30}{t.domain:<8}{per_table[t.key]:>6}  {'yes' if t.laggable else ''}")
    by_domain = cat.domain_counts()
    lines += ["", f"base features: {counts['base']:,} (" + ", ".join(f"{d} {by_domain[d]}" for d in DOMAINS) + ")",
              f"laggable: {counts['laggable']} x lags {list(settings.splits.lags)} + {per_table['bqx']} core x "
              f"causality lag {settings.splits.causality_lag} = {counts['lagged']:,} lagged",
              f"candidates: {counts['candidates']:,}"]
    avail = {d: sum(1 for c in cat.candidate_names() if cat.domain_of(c) == d) for d in DOMAINS}
    q = effective_quota(avail, settings)
    sel = settings.selection
    lines.append(f"selection: {sel.n_select} per pair, >= {sel.min_idx} idx and >= {sel.min_bqx} bqx "
                 f"(effective today: {q.n_select}, idx >= {q.min_idx}, bqx >= {q.min_bqx})")
    lines.append(f"warm-up rows dropped by extract: {cat.warmup_rows():,}")
    sz = sizes(settings)
    lines += ["", f"bytes per pair-year ({ROWS_PER_PAIR_YEAR:,} one-minute rows):",
              f"  bars {_gib(sz.bars)}, panel (all {len(PAIRS)} pairs) {_gib(sz.panel)}, "
              f"features {_gib(sz.features)}; built from them where read, never stored: every candidate "
              f"{_gib(sz.candidates)} (never all at once), the selected columns {_gib(sz.selected)}",
              "  working set per task: " + ", ".join(f"{k} {_gib(v)}" for k, v in sz.working_set.items()),
              f"  disk a run leaves (all {len(PAIRS)} pairs, stored): {_gib(disk_bytes(settings))}; per pair-year "
              f"{_gib(disk_bytes(settings, n_pairs=1))}",
              "  pipeline task requests (the compiled YAML's): " + ", ".join(
                  f"{k} {r.memory} / {r.cpu} CPU" for k, r in task_resources(settings).items())]
    prices = load_prices(prices_path)
    heaviest = max(sz.working_set, key=lambda k: sz.working_set[k])
    pick = recommend(sz.working_set[heaviest], prices)
    if pick is None:
        lines.append(f"  no instance in the price file holds {HEADROOM} x the {heaviest} working set")
    else:
        lines.append(f"  recommended instance: {pick.name} ({pick.vcpu} vCPU, {pick.memory_gib:g} GiB; heaviest task "
                     f"{heaviest} needs {_gib(int(HEADROOM * sz.working_set[heaviest]))} with headroom), "
                     f"${pick.usd_per_hour}/h in {pick.region} as of {pick.as_of} [{pick.source}]")
    lines += _endpoint_lines(settings, prices, model_path)
    lines += ["", "settings each stage reads (a change re-runs only the stages that read it):",
              *(f"  {stage:<8}{', '.join(sections)}" for stage, sections in STAGE_SECTIONS.items())]
    return "\n".join(lines)


def _endpoint_lines(settings: Settings, prices: list[Instance], model_path: str | None) -> list[str]:
    if model_path:
        from bqx.serving.models import load_model

        per_model, source = load_model("plan", model_path).bytes, f"measured on {model_path}"
    else:
        per_model = model_bytes_estimate(settings)
        source = f"estimated for {settings.training.iterations} trees of depth {settings.training.depth}"
    need = endpoint_memory(settings, per_model)
    lines = ["", f"multi-model endpoint ({len(PAIRS)} models on one instance):",
             f"  per model {per_model / 2**20:,.2f} MiB ({source}); server base {SERVE_PROCESS_BASE / 2**20:,.0f} MiB; "
             f"online features for raw bars {online_memory(settings) / 2**20:,.0f} MiB; all loaded {_gib(need)}"]
    pick = recommend(need, prices)
    if pick is not None:
        lines.append(f"  smallest instance holding them with {HEADROOM}x headroom: {pick.name} "
                     f"({pick.memory_gib:g} GiB), ${pick.usd_per_hour}/h; set the serve memory budget "
                     f"(--memory-mb / BQX_SERVE_MEMORY_MB) below {pick.memory_gib * 1024 * 0.75:,.0f} MiB")
    return lines


def compare_text(settings: Settings) -> str:
    """The full and base profiles side by side (the phased roll-out: base tables first, advanced ones later)."""
    rows = []
    for profile in ("full", "base"):
        s = settings.replace(profile=profile)
        c = Catalog(s).counts()
        sz = sizes(s)
        rows.append((profile, c["base"], c["candidates"], sz.features, max(sz.working_set.values())))
    lines = ["", f"{'profile':<8}{'base':>7}{'candidates':>12}{'features/pair-year':>20}{'largest task':>14}"]
    lines += [f"{p:<8}{b:>7,}{c:>12,}{_gib(f):>20}{_gib(w):>14}" for p, b, c, f, w in rows]
    return "\n".join(lines)


# ---- the plan as data: JSON, the monthly cost and the difference between two plans -------------------

PLAN_FORMAT = 1


def plan_data(settings: Settings, prices_path: str | None = None, cron: str = DEFAULT_CRON, years: float = 1.0,
              tune_trials: int = 0, batch_runs: float = 0.0) -> dict:
    """Everything ``bqx plan --json`` writes: counts, instances, sizes and the monthly cost lines."""
    from bqx.costs import monthly, runs_per_month

    cat = Catalog(settings)
    counts, by_domain = cat.counts(), cat.domain_counts()
    rows = int(round(years * ROWS_PER_PAIR_YEAR))
    sz, prices = sizes(settings, rows), load_prices(prices_path)
    heaviest = max(sz.working_set, key=lambda k: sz.working_set[k])
    pick = recommend(sz.working_set[heaviest], prices)
    if pick is None:
        raise ValueError(f"no instance in the price file holds {HEADROOM} x the {heaviest} working set "
                         f"({_gib(sz.working_set[heaviest])}): add a larger one (--prices FILE)")
    stored = disk_bytes(settings, rows)
    a = settings.aws
    cost = monthly(settings, prices, pick.name, runs_per_month(cron), years, tune_trials, stored,
                   batch_runs=batch_runs)
    return {
        "format": PLAN_FORMAT, "catalog": cat.version(), "profile": settings.features.profile,
        "bqx_version": settings.features.bqx_version, "cron": cron, "prices_as_of": sorted({p.as_of for p in prices}),
        "counts": {"base": counts["base"], **{d: by_domain[d] for d in DOMAINS}, "laggable": counts["laggable"],
                   "lagged": counts["lagged"], "candidates": counts["candidates"],
                   "selected": settings.selection.n_select, "min_idx": settings.selection.min_idx,
                   "min_bqx": settings.selection.min_bqx},
        "tables": cat.table_counts(),
        "instances": {"processing": pick.name, "training": a.instance_type, "training_count": a.instance_count,
                      "endpoint": a.endpoint_instance_type, "endpoint_count": a.endpoint_instance_count},
        "bytes": {"features_per_pair_year": sz.features, "stored_per_run": stored,
                  **{f"working_set_{k}": v for k, v in sz.working_set.items()}},
        "monthly": cost.as_dict(),
    }


def flatten(plan: dict) -> dict[str, object]:
    """A plan's comparable figures, one key each (``counts.base``, ``cost.training``, ``cost.total`` ...)."""
    out: dict[str, object] = {"catalog": plan.get("catalog"), "profile": plan.get("profile"), "cron": plan.get("cron")}
    for section in ("counts", "instances", "tables", "bytes"):
        out.update({f"{section}.{k}": v for k, v in plan.get(section, {}).items()})
    monthly_cost = plan.get("monthly", {})
    out.update({f"cost.{line['name']}": float(line["usd"]) for line in monthly_cost.get("lines", [])})
    out["cost.total"] = float(monthly_cost.get("total_usd", 0.0))
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) < 0.005  # dollars: equal to the cent
    return a == b


def diff_text(old: dict, new: dict) -> str:
    """What changed between two plans, one row per changed figure (the monthly total always shown)."""
    a, b = flatten(old), flatten(new)
    rows = []
    for key in [*a, *(k for k in b if k not in a)]:
        before, after = a.get(key), b.get(key)
        if _same(before, after) and key != "cost.total":
            continue
        change = ""
        if isinstance(before, int | float) and isinstance(after, int | float) and not isinstance(before, bool):
            delta = after - before
            change = f"{delta:+,.2f}" if key.startswith("cost.") else f"{delta:+,}"
            if before:
                change += f" ({delta / before:+.1%})"
        rows.append((key, _show(before), _show(after), change))
    if len(rows) == 1 and _same(a.get("cost.total"), b.get("cost.total")):
        return "the plans agree: no figure changed\n" + _table(rows)
    return _table(rows)


def _show(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    head = ("figure", "old", "new", "change")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, rule, *body])
