"""Small Markdown reports the stages attach to the KFP UI."""

from __future__ import annotations


def ingest_markdown(summary: dict[str, dict]) -> str:
    from bqx.bars import describe_interval

    lines = ["# Ingested bars", "", "| pair | rows | first | last | interval | columns |", "|---|---:|---|---|---|---|"]
    for pair, info in sorted(summary.items()):
        interval = describe_interval(info["bar_interval_s"]) if "bar_interval_s" in info else "?"
        lines.append(f"| {pair} | {info['rows']:,} | {info['first']} | {info['last']} | {interval} | "
                     f"{', '.join(info['columns'])} |")
    return "\n".join(lines) + "\n"


def deploy_markdown(manifest: dict, failed: dict[str, str] | None = None) -> str:
    lines = ["# Model repository", "", "| pair | target model | bytes | sha256 | catalog |", "|---|---|---:|---|---|"]
    for pair, e in manifest["models"].items():
        lines.append(f"| {pair} | {e['target_model']} | {e['bytes']:,} | {e['sha256'][:12]} | {e['catalog_version']} |")
    changed = ", ".join(manifest["changed"]) or "none (already deployed)"
    text = "\n".join(lines) + f"\n\nChanged: {changed}\n"
    if failed:
        text += "\n## Failed pairs (not deployed)\n\n" + "\n".join(f"- {p}: {r}" for p, r in sorted(failed.items()))
        text += "\n"
    return text
