"""Reports as text: an aligned table for people, JSON and CSV for programs."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import textwrap
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final, Literal

from rtrelay.ledger.records import Grouping, UsageRow
from rtrelay.ledger.views import usage_view

__all__ = ["Format", "render_table", "render_usage"]

Format = Literal["table", "json", "csv"]

_TOKEN_HEADERS: Final = (
    ("input_text", "TEXT IN"),
    ("input_audio", "AUDIO IN"),
    ("input_image", "IMAGE IN"),
    ("cached_text", "CACHED TEXT"),
    ("cached_audio", "CACHED AUDIO"),
    ("cached_image", "CACHED IMAGE"),
    ("output_text", "TEXT OUT"),
    ("output_audio", "AUDIO OUT"),
)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned. ``None`` prints as ``-``."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | Decimal) or r[i] is None for r in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cells)])


def render_usage(
    rows: Sequence[UsageRow], fmt: Format, *, by: Grouping, width: int | None = None
) -> str:
    """``rtrelay usage`` output. The table ends with a TOTAL line; JSON and CSV do not.

    ``width``: the table must fit in that many columns (a terminal's width; ``None``: no
    limit); see ``_fit``. JSON and CSV always carry every column.
    """
    if fmt == "json":
        return json.dumps({"object": "list", "by": by, "data": [usage_view(r) for r in rows]})
    if fmt == "csv":
        out = io.StringIO()
        views = [usage_view(r) for r in rows]
        fields = list(views[0]) if views else [f.name for f in dataclasses.fields(UsageRow)]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(views)
        return out.getvalue().rstrip("\n")
    headers = [by.upper(), *(["NAME"] if by == "key" else [])]
    headers += ["SESSIONS", "RESPONSES", *(h for _, h in _TOKEN_HEADERS)]
    headers += ["SECONDS", "COST USD", "UNPRICED"]
    table = [_table_row(r, by) for r in rows]
    if rows:
        table.append(_total_row(rows, by))
    return _fit(headers, table, width)


_OPTIONAL: Final = frozenset(
    {*(h for _, h in _TOKEN_HEADERS), "IN", "CACHED", "OUT", "SECONDS", "UNPRICED"}
)
"""Columns a narrow table may leave out when they are zero in every row."""
_SUMMED: Final = (
    ("IN", ("TEXT IN", "AUDIO IN", "IMAGE IN")),
    ("CACHED", ("CACHED TEXT", "CACHED AUDIO", "CACHED IMAGE")),
    ("OUT", ("TEXT OUT", "AUDIO OUT")),
)
_ALL_COLUMNS: Final = "every column: --format json or csv"


def _fit(headers: list[str], table: list[list[Any]], width: int | None) -> str:
    """The usage table within ``width``: every column if they fit; else without the
    optional columns that are 0 in every row; else also with each direction's tokens
    summed over modalities (IN, CACHED, OUT). A last line says what was left out."""
    text = render_table(headers, table)
    if width is None or _widest(text) <= width:
        return text
    headers, table, dropped = _without_zero_columns(headers, table)
    text = render_table(headers, table)
    note = f"(0 in every row, not shown: {', '.join(dropped)}; {_ALL_COLUMNS})"
    if _widest(text) <= width:
        return f"{text}\n{textwrap.fill(note, width)}" if dropped else text
    for name, parts in _SUMMED:
        present = [headers.index(h) for h in parts if h in headers]
        if not present:
            continue
        at = present[0]
        for row in table:
            row[at] = sum(row[i] for i in present)
        headers[at] = name
        for i in reversed(present[1:]):
            del headers[i]
            for row in table:
                del row[i]
    headers, table, _ = _without_zero_columns(headers, table)
    text = render_table(headers, table)
    if "NAME" in headers and _widest(text) > width:  # last resort: shorten key names
        at = headers.index("NAME")
        room = max(len("NAME"), width - (_widest(text) - _column_width(headers, table, at)))
        for row in table:
            name = row[at]
            if isinstance(name, str) and len(name) > room:
                row[at] = name[: room - 1] + "…"
        text = render_table(headers, table)
    note = f"(IN, CACHED, OUT: tokens summed over text, audio and image; {_ALL_COLUMNS})"
    return f"{text}\n{textwrap.fill(note, width)}"


def _column_width(headers: list[str], table: list[list[Any]], at: int) -> int:
    return max(len(headers[at]), *(len("-" if r[at] is None else str(r[at])) for r in table))


def _without_zero_columns(
    headers: list[str], table: list[list[Any]]
) -> tuple[list[str], list[list[Any]], list[str]]:
    keep = [
        i
        for i, h in enumerate(headers)
        if h not in _OPTIONAL or any(row[i] not in (0, None) for row in table)
    ]
    dropped = [h for i, h in enumerate(headers) if i not in keep]
    return [headers[i] for i in keep], [[row[i] for i in keep] for row in table], dropped


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def _table_row(row: UsageRow, by: Grouping) -> list[Any]:
    out: list[Any] = [row.group, *([row.name] if by == "key" else [])]
    out += [row.sessions, row.responses + row.transcriptions]
    out += [getattr(row, field) for field, _ in _TOKEN_HEADERS]
    out += [row.seconds, row.cost_usd, row.unpriced]
    return out


def _total_row(rows: Sequence[UsageRow], by: Grouping) -> list[Any]:
    """Column sums. Sessions are left out by day: one session can span two days."""
    out: list[Any] = ["TOTAL", *([None] if by == "key" else [])]
    out.append(None if by == "day" else sum(r.sessions for r in rows))
    out.append(sum(r.responses + r.transcriptions for r in rows))
    out += [sum(getattr(r, field) for r in rows) for field, _ in _TOKEN_HEADERS]
    out.append(sum((r.seconds for r in rows), Decimal(0)))
    out.append(sum((r.cost_usd for r in rows), Decimal(0)))
    out.append(sum(r.unpriced for r in rows))
    return out
