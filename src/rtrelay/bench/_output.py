"""The results folder: ``results.json``, ``results.md`` and the PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from rtrelay.bench._report import goals, markdown

__all__ = ["write_document", "write_results"]


def write_document(doc: dict[str, Any], table: str, out: Path) -> list[Path]:
    """``results.json`` (the document) and ``results.md`` (its table) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "results.md"]
    written[0].write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    written[1].write_text(table + "\n")
    return written


def write_results(doc: dict[str, Any], out: Path, *, plots: bool = True) -> list[Path]:
    """Add the goals to ``doc`` and write everything into ``out``; returns the files written.

    A plot that cannot be drawn (matplotlib missing) costs the plot, never the results.
    """
    doc["goals"] = goals(doc)
    written = write_document(doc, markdown(doc), out)
    if plots:
        try:
            from rtrelay.bench._plots import write_plots
        except ImportError:  # pragma: no cover - matplotlib is in the bench extra
            return written
        written += write_plots(doc, out)
    return written
