"""Small Markdown reports the stages attach to the KFP UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bqx.ab.decide import Decision
    from bqx.deploy import DeploySummary
    from bqx.ingest import IngestSummary
    from bqx.predict import PredictSummary


def ingest_markdown(summary: IngestSummary) -> str:
    from bqx.bars import describe_interval

    lines = ["# Ingested bars", "", "| pair | rows | first | last | interval | columns |", "|---|---:|---|---|---|---|"]
    for pair, info in sorted(summary.pairs.items()):
        lines.append(f"| {pair} | {info.rows:,} | {info.first} | {info.last} | {describe_interval(info.bar_interval_s)}"
                     f" | {', '.join(info.columns)} |")
    return "\n".join(lines) + "\n"


def deploy_markdown(summary: DeploySummary) -> str:
    lines = ["# Model repository", "", "| pair | target model | bytes | sha256 | catalog |", "|---|---|---:|---|---|"]
    for pair, e in summary.repository.models.items():
        lines.append(f"| {pair} | {e['target_model']} | {e['bytes']:,} | {e['sha256'][:12]} | {e['catalog_version']} |")
    changed = ", ".join(summary.repository.changed) or "none (already deployed)"
    text = "\n".join(lines) + f"\n\nChanged: {changed}\n"
    if summary.served:
        text += ("\n## What serves each pair (model registry and gate)\n\n| pair | registered | serves | why |\n"
                 "|---|---|---|---|\n")
        for s in summary.served:
            serves = f"v{s.serving.version}" if s.serving else "nothing"
            text += f"| {s.pair} | v{s.candidate.version} {s.candidate.status} | {serves} | {s.why} |\n"
    if summary.endpoint:
        e = summary.endpoint
        text += (f"\nEndpoint {e.manifest['endpoint']} on config {e.endpoint_config}; uploaded "
                 f"{len(e.uploaded)}, created: {', '.join(e.created) or 'nothing'}, updated: "
                 f"{', '.join(e.updated) or 'nothing'}"
                 + (f", deleted: {', '.join(e.deleted)}" if e.deleted else "") + "\n"
                 + (f"\n**{e.held}**\n" if e.held else ""))
    failed = summary.failed
    if failed:
        text += "\n## Failed pairs (not deployed)\n\n" + "\n".join(f"- {p}: {r}" for p, r in sorted(failed.items()))
        text += "\n"
    return text


def ab_markdown(ab: dict | None, verdict: Decision | None, applied: str = "") -> str:
    """The A/B step's card: the test, each variant's live error, the verdict and what was done."""
    if ab is None or verdict is None:
        return "# A/B test\n\nNo A/B test is running: nothing to decide.\n"
    lines = [f"# A/B test {ab['id']}", "", f"Started {ab['started']}; the candidate takes {ab['candidate_percent']}% "
             "of the traffic.", "", "| variant | answers scored | live RMSE |", "|---|---:|---:|"]
    lines += [f"| {v.variant} | {v.rows:,} | {v.rmse:.5g} |" for v in verdict.variants]
    lines += ["", f"**{verdict.action}**: {verdict.why}."]
    if applied:
        lines += ["", applied]
    return "\n".join(lines) + "\n"


def predict_markdown(summary: PredictSummary) -> str:
    lines = ["# Batch prediction", "", "| pair | model | predicted bars | first | last | history-only bars | seconds |",
             "|---|---|---:|---|---|---:|---:|"]
    for p in summary.pairs:
        lines.append(f"| {p.pair} | {p.target_model} | {p.rows:,} | {p.first} | {p.last} | {p.warmup:,} | "
                     f"{p.seconds:.1f} |")
    return "\n".join(lines) + f"\n\n{summary.rows:,} predictions in {summary.seconds:.1f} s.\n"

