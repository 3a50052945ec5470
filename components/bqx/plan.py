"""``bqx plan``: feature counts per table and domain, lag candidates and selection, from the catalog."""

from __future__ import annotations

from bqx.catalog import DOMAINS, Catalog
from bqx.config import Settings
from bqx.selection import effective_quota


def plan_text(settings: Settings) -> str:
    cat = Catalog(settings)
    planned = cat.planned_counts()
    lines = [f"bqx plan (profile {settings.profile}, BQX {settings.bqx_version}, catalog {cat.version()})", "",
             f"{'table':<28}{'domain':<8}{'count':>6}  {'lag':<4}{'status'}"]
    for t in cat.tables:
        status = "computed" if t.implemented else "declared"
        lines.append(f"{t.table_name('{pair}'):<28}{t.domain:<8}{t.count:>6}  {'yes' if t.laggable else '':<4}{status}")
    computed = cat.features
    by_domain = cat.planned_domain_counts()
    lines += ["", f"base features: {planned['base']:,} planned ("
              + ", ".join(f"{d} {by_domain[d]}" for d in DOMAINS) + f"); {len(computed)} computed today",
              f"laggable: {planned['laggable']} x lags {list(settings.lags)} + {cat.table('bqx').count} core x "
              f"causality lag {settings.causality_lag} = {planned['lagged']:,} lagged",
              f"candidates: {planned['candidates']:,} planned; {len(cat.candidate_names()):,} computed today"]
    avail = {d: sum(1 for c in cat.candidate_names() if cat.domain_of(c) == d) for d in DOMAINS}
    q = effective_quota(avail, settings)
    lines.append(f"selection: {settings.n_select} per pair, >= {settings.min_idx} idx and >= {settings.min_bqx} bqx "
                 f"(effective today: {q.n_select}, idx >= {q.min_idx}, bqx >= {q.min_bqx})")
    lines.append(f"warm-up rows dropped by extract: {cat.warmup_rows()}")
    return "\n".join(lines)
