"""The soak's results folder: ``results.json`` and ``results.md`` (the table, also printed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rtrelay.bench._hoststat import steal_markdown
from rtrelay.bench._output import write_document

__all__ = ["soak_markdown", "write_soak_results"]


def write_soak_results(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write the document and its table into ``out``; returns the files written."""
    return write_document(doc, soak_markdown(doc), out)


def soak_markdown(doc: dict[str, Any]) -> str:
    """The relay's samples as a table, then sessions, verdict and ledger in a few lines."""
    options = doc["meta"]["options"]
    sessions = doc.get("sessions", {})
    lines = [
        f"rtrelay bench --soak: {sessions.get('started', 0):,} sessions "
        f"({options['concurrency']} at a time, a wrong key every {options['bad_key_every']}), "
        f"{doc['meta'].get('elapsed_s', '?')} s"
        + (f", stopped by {doc['meta']['stopped_by']}" if doc["meta"].get("stopped_by") else ""),
        "",
        "| sample | sessions | s | RSS MB | open fds | tasks | threads | TCP conns |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    samples = [doc.get("before"), *doc.get("checkpoints", []), doc.get("after")]
    for sample in samples:
        if not sample:
            continue
        lines.append(
            f"| {sample['label']} | {sample['sessions']:,} | {sample['elapsed_s']:.1f} | "
            f"{sample['rss_kb'] / 1024:.1f} | {sample['fds']} | {_cell(sample['tasks'])} | "
            f"{sample['threads']} | {sample['tcp_connections']} |"
        )
    verdict = doc.get("verdict")
    if verdict:
        growth, reasons = verdict["growth"], verdict["reasons"]
        lines += [
            "",
            f"Before → after: RSS {growth['rss_kb']:+,} KB, fds {growth['fds']:+}, "
            f"tasks {_signed(growth['tasks'])}, threads {growth['threads']:+}, "
            f"TCP {growth['tcp_connections']:+}. RSS trend: "
            f"{_cell(verdict['rss_kb_per_1000_sessions'])} KB per 1,000 sessions overall, "
            f"{_cell(verdict['rss_kb_per_1000_sessions_second_half'])} in the second half "
            f"(leak above {verdict['rss_limit_kb_per_1000_sessions']:.0f}"
            + ("" if verdict["rss_judged"] else "; too few sessions to judge RSS")
            + ").",
            "Leak: "
            + ("suspected: " + "; ".join(reasons) if reasons else "none")
            + f" (judged from {verdict['second_half_from']:,} sessions on).",
        ]
    if sessions:
        lines += [
            "",
            f"Sessions: {sessions['connected']:,} created, {sessions['responses']:,} responses, "
            f"{sessions['refused']:,} refused (401), {sessions['failed']:,} failed"
            + (f" {sessions['failures']}" if sessions["failures"] else "")
            + f"; endings {sessions['endings']}; close codes seen {sessions['client_close_codes']}"
            + (f"; {doc['sessions_per_s']} sessions/s" if doc.get("sessions_per_s") else ""),
        ]
    ledger = doc.get("ledger")
    if ledger:
        checks = ", ".join(
            f"{name} {check['ledger']} (expected {check['expected']})"
            for name, check in ledger["checks"].items()
        )
        lines.append(f"Ledger: {'ok' if ledger['ok'] else 'MISMATCH'}: {checks}")
    if doc.get("steal"):
        lines.append(steal_markdown(doc["steal"]))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _signed(value: int | None) -> str:
    return "-" if value is None else f"{value:+}"
