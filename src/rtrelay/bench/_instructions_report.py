"""The ``--instructions`` results folder: ``results.json`` and ``results.md`` (also printed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rtrelay.bench._hoststat import steal_markdown
from rtrelay.bench._output import write_document
from rtrelay.bench._relay import sources_markdown

__all__ = ["instructions_markdown", "write_instruction_results"]


def write_instruction_results(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write the document and its table into ``out``; returns the files written."""
    return write_document(doc, instructions_markdown(doc), out)


def _spread(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} %"


def instructions_markdown(doc: dict[str, Any]) -> str:
    """One row per target (means over repeats, with their spread), then the ratios."""
    meta = doc["meta"]
    options = meta["options"]
    lines = [
        f"rtrelay bench --instructions: {options['sessions']} sessions x "
        f"{options['appends']} appends (+ probes) and 1 response each, "
        f"{options['repeats']} repeat(s) per target under callgrind, "
        f"{meta.get('elapsed_s', '?')} s",
        "",
        "| target | instructions/frame | spread | raw | syscalls/frame | spread "
        "| instructions/session set-up | spread | idle Ir/s | frames |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in doc["targets"].items():
        idle = [r["idle_instructions_per_s"] for r in t["runs"]]
        lines.append(
            f"| {name} | {t['instructions_per_frame']:,.0f} "
            f"| {_spread(t['instructions_per_frame_spread_pct'])} "
            f"| {t['instructions_per_frame_raw']:,.0f} "
            f"| {t['syscalls_per_frame']:.2f} | {_spread(t['syscalls_per_frame_spread_pct'])} "
            f"| {t['instructions_per_session_setup']:,.0f} "
            f"| {_spread(t['instructions_per_session_setup_spread_pct'])} "
            f"| {min(idle):,}-{max(idle):,} | {', '.join(str(f) for f in t['frames'])} |"
        )
    for pair, ratio in doc.get("comparisons", {}).items():
        shown = ", ".join(
            f"{label} {ratio[key]:.3f}x"
            for key, label in (
                ("instructions_per_frame", "instructions/frame"),
                ("syscalls_per_frame", "syscalls/frame"),
                ("instructions_per_session_setup", "per session set-up"),
            )
            if ratio.get(key) is not None
        )
        lines.append(f"- {pair}: {shown}")
    lines += sources_markdown(meta)
    lines += [f"- placement: {note}" for note in meta.get("placement_notes", [])]
    lines.append("")
    lines.append(steal_markdown(doc.get("steal")))
    for name, why in doc.get("skipped", {}).items():
        lines.append(f"- {name} skipped: {why}")
    return "\n".join(lines)
