"""The WebRTC bench's results folder: ``results.json`` and ``results.md`` (the table, printed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rtrelay.bench._hoststat import steal_markdown
from rtrelay.bench._output import write_document
from rtrelay.bench._relay import sources_markdown

__all__ = ["webrtc_markdown", "write_webrtc_results"]


def write_webrtc_results(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write the document and its table into ``out``; returns the files written."""
    return write_document(doc, webrtc_markdown(doc), out)


def webrtc_markdown(doc: dict[str, Any]) -> str:
    """Setup times per target and added by the relay, then the relay's cost per call."""
    options = doc["meta"]["options"]
    setup = doc.get("setup") or {}
    lines = [
        f"rtrelay bench --webrtc: {options['calls']} sequential call setups per target, "
        f"{options['concurrency']} concurrent calls through rtrelay, "
        f"{doc['meta'].get('elapsed_s', '?')} s",
        "",
        "| target | offer → answer p50 / p90 / p99 ms | offer → session.created p50 / p90 / p99 ms "
        "| calls | failed |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("direct", "rtrelay"):
        f = setup.get(name)
        if f:
            lines.append(
                f"| {name} | {_triple(f['answer_ms'])} | {_triple(f['created_ms'])} "
                f"| {f['calls']} | {f['failed']} |"
            )
    added = setup.get("added")
    if added:
        lines.append(
            f"| added by rtrelay | {_triple(added['answer_ms'])} | {_triple(added['created_ms'])} "
            "| | |"
        )
    per_call = doc.get("relay_per_call")
    lines.append("")
    if setup:
        lines.append(
            f"Relay CPU per call set up and hung up (sequential): "
            f"{_cell(setup.get('relay_cpu_ms_per_call'))} ms."
        )
    if per_call:
        lines.append(
            f"At {per_call['open']} of {per_call['calls']} calls open ({per_call['responses']} "
            f"responses metered), per call: RSS +{_cell(per_call['rss_kb_per_call'])} KB, "
            f"USS +{_cell(per_call['uss_kb_per_call'])} KB over the idle relay "
            f"({per_call['rss_baseline_mb']} MB → {per_call['rss_open_mb']} MB); CPU "
            f"{_cell(per_call['cpu_ms_per_call_opened'])} ms to open (with its response), "
            f"{_cell(per_call['cpu_pct_core_per_open_call'])} % of a core held open "
            f"({per_call['hold_s']} s). After hang-up: RSS "
            f"+{_cell(per_call['rss_kb_per_call_after_hangup'])} KB, USS "
            f"+{_cell(per_call['uss_kb_per_call_after_hangup'])} KB per call still held."
        )
        failures = per_call["setup"]["failures"]
        if failures:
            lines.append(f"Concurrent calls failed: {failures}")
        heap = per_call.get("heap")
        if heap:
            lines.append(_heap_line(per_call["batch"], heap))
    for later in doc.get("later_batches", []):
        lines.append(
            f"Batch {later['batch']}: {later['open']} open, RSS "
            f"+{_cell(later['rss_kb_per_call'])} KB per call (reusing what earlier batches "
            f"freed), {later['setup']['failed']} failed."
        )
        if later.get("heap"):
            lines.append(_heap_line(later["batch"], later["heap"]))
    for name in ("direct", "rtrelay"):
        failures = (setup.get(name) or {}).get("failures")
        if failures:
            lines.append(f"{name} setups failed: {failures}")
    for goal in doc.get("goals", []):
        verdict = {True: "met", False: "**missed**", None: "not measured"}[goal["met"]]
        lines.append(f"- {goal['goal']}: {verdict} ({_cell(goal['value'])})")
    if doc.get("steal"):
        lines.append(steal_markdown(doc["steal"]))
    lines += sources_markdown(doc["meta"])
    return "\n".join(lines)


def _heap_line(batch: int, heap: dict[str, Any]) -> str:
    """The traced heap per call and the relay lines holding most of it."""
    top = ", ".join(f"{t['where']} {t['kb_per_call']}" for t in heap["top_rtrelay_lines"][:4])
    return (
        f"Batch {batch}, traced heap: +{heap['traced_kb_per_call']} KB per open call, "
        f"+{heap['traced_kb_per_call_after_hangup']} KB still held after hang-up; "
        f"by rtrelay line (KB per call): {top}."
    )


def _triple(p: dict[str, Any]) -> str:
    return " / ".join(_cell(p.get(k)) for k in ("p50", "p90", "p99"))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
