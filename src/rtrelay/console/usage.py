"""The usage page and its exports: the ledger's usage report, as ``rtrelay usage`` gives it.

The CSV and JSON are rendered by ``ledger.render.render_usage``, the very function
behind ``rtrelay usage --format csv|json``: same query, same columns, same figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from aiohttp import web

from rtrelay.console.state import CONSOLE, Console, page
from rtrelay.ledger.keys import text_problem
from rtrelay.ledger.records import Grouping, UsageRow
from rtrelay.ledger.render import render_usage
from rtrelay.ledger.store import resolve_key
from rtrelay.ledger.timespec import parse_when
from rtrelay.ledger.views import usage_view

__all__ = ["UsageQuery", "routes", "usage_query"]

routes: Final = web.RouteTableDef()
_GROUPINGS: Final[dict[str, Grouping]] = {"key": "key", "model": "model", "day": "day"}
_EXPORTS: Final = {"csv": "text/csv", "json": "application/json"}


@dataclass(frozen=True, slots=True)
class UsageQuery:
    by: Grouping = "key"
    key_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


async def usage_query(console: Console, query: Mapping[str, str]) -> UsageQuery:
    """The report's parameters, read as ``rtrelay usage`` reads its options."""
    values = {k: query.get(k, "").strip()[:200] for k in ("by", "key", "since", "until")}
    errors: dict[str, str] = {}
    by = _GROUPINGS.get(values["by"] or "key")
    if by is None:
        errors["by"] = "key, model or day"
        by = "key"
    values["by"] = by
    now = console.clock()
    times: dict[str, datetime | None] = {"since": None, "until": None}
    for name in times:
        if values[name]:
            try:
                times[name] = parse_when(values[name], now=now, future=False)
            except ValueError as exc:
                errors[name] = str(exc)
    key_id = None
    if values["key"]:
        record = None
        if text_problem(values["key"]) is None:
            record = await resolve_key(console.relay.parts.store, values["key"])
        if record is None:
            errors["key"] = "no such key"
        else:
            key_id = record.id
    return UsageQuery(by, key_id, times["since"], times["until"], values, errors)


async def _rows(console: Console, q: UsageQuery) -> list[UsageRow]:
    if q.errors:
        return []
    return await console.relay.parts.store.usage(
        key_id=q.key_id, since=q.since, until=q.until, by=q.by
    )


def _chart(rows: list[UsageRow], by: Grouping) -> dict[str, Any] | None:
    """Cost and tokens per day, for the page's chart (by day only: a time axis)."""
    if by != "day" or not rows:
        return None
    out: dict[str, list[Any]] = {"t": [], "cost": [], "tokens_in": [], "tokens_out": []}
    for r in rows:
        if r.group is None:
            continue
        out["t"].append(int(datetime.fromisoformat(r.group + "T00:00:00+00:00").timestamp()))
        out["cost"].append(float(r.cost_usd))
        out["tokens_in"].append(r.input_text + r.input_audio + r.input_image)
        out["tokens_out"].append(r.output_text + r.output_audio)
    return out


@routes.get("/usage", name="usage")
async def usage(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    q = await usage_query(console, request.query)
    rows = await _rows(console, q)
    top = max((r.cost_usd for r in rows), default=Decimal(0))
    views = []
    for r in rows:
        view = usage_view(r)
        view["share"] = float(r.cost_usd / top) if top > 0 else 0.0
        view["tokens_in"] = r.input_text + r.input_audio + r.input_image
        view["tokens_out"] = r.output_text + r.output_audio
        views.append(view)
    context = {
        "q": q,
        "rows": views,
        "total": sum((r.cost_usd for r in rows), Decimal(0)),
        "chart": _chart(rows, q.by),
        "export_query": request.query_string,
    }
    return page(request, "usage.html", "usage", context, status=400 if q.errors else 200)


@routes.get("/usage.{fmt:csv|json}", name="usage_export")
async def usage_export(request: web.Request) -> web.Response:
    """The report as a file, byte for byte what ``rtrelay usage --format csv|json`` prints."""
    console = request.app[CONSOLE]
    fmt = request.match_info["fmt"]
    q = await usage_query(console, request.query)
    if q.errors:
        text = "; ".join(f"{k}: {v}" for k, v in q.errors.items())
        return web.Response(status=400, text=text, content_type="text/plain")
    body = render_usage(await _rows(console, q), "csv" if fmt == "csv" else "json", by=q.by)
    return web.Response(
        text=body + "\n",
        content_type=_EXPORTS[fmt],
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="rtrelay-usage-by-{q.by}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )
