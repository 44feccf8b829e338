"""The overview (live figures, refreshed by htmx polling) and the channels page."""

from __future__ import annotations

import logging
import time
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from rtrelay.console.state import CONSOLE, Console, page
from rtrelay.console.stats import read_sample
from rtrelay.errors import error_for_code
from rtrelay.route.status import channel_status

if TYPE_CHECKING:
    from rtrelay.edge.session_run import SessionRun

__all__ = ["error_meaning", "routes", "session_kind", "spend_now"]

routes: Final = web.RouteTableDef()
_log = logging.getLogger("rtrelay.console")
_FAILURE_ROWS: Final = 200
"""Recent refusals read for the channels page's failure list."""


def error_meaning(code: str | None) -> str:
    """What an error code of the table means (its default message)."""
    cls = error_for_code(code) if code else None
    return "" if cls is None else cls.default_message


def session_kind(run: SessionRun) -> tuple[str, str]:
    """A live session's protocol and transport.

    Realtime over WebSocket is all the relay speaks today; GPT-Live, translation and
    WebRTC calls add their own kinds when they arrive.
    """
    return ("realtime", "websocket")


async def spend_now(console: Console) -> tuple[Decimal, Decimal]:
    """Spend today and this month (UTC), from the ledger's usage report by day."""
    now = console.clock()
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = await console.relay.parts.store.usage(since=month, by="day")
    today = now.strftime("%Y-%m-%d")
    day_total = sum((r.cost_usd for r in rows if r.group == today), Decimal(0))
    return day_total, sum((r.cost_usd for r in rows), Decimal(0))


async def _overview(console: Console) -> dict[str, Any]:
    relay = console.relay
    now = read_sample(relay.metrics, time.time())
    spend: tuple[Decimal, Decimal] | None
    try:
        spend = await console.spend.get("spend", lambda: spend_now(console))
    except Exception:  # the store is down: the page says so, the rest still shows
        _log.warning("console: spend figures unavailable", exc_info=True)
        spend = None
    kinds = Counter(session_kind(run) for run in relay.sessions.values())
    return {
        "five": console.history.window(now, 300),
        "day": console.history.window(now, 86400),
        "active": round(now.active),
        "by_kind": sorted(kinds.items()),
        "workers": relay.settings.server.workers,
        "spend": spend,
        "channels": channel_status(relay.router),
        "draining": relay.draining,
        "meaning": error_meaning,
        "updated": now.at,
    }


@routes.get("/", name="overview")
async def overview(request: web.Request) -> web.Response:
    context = await _overview(request.app[CONSOLE])
    return page(request, "overview.html", "overview", context)


@routes.get("/overview/live", name="overview_live")
async def overview_live(request: web.Request) -> web.Response:
    """The figures alone, for the page's htmx poll."""
    context = await _overview(request.app[CONSOLE])
    return page(request, "_overview_live.html", "overview", context)


@routes.get("/overview/series", name="overview_series")
async def overview_series(request: web.Request) -> web.Response:
    """The charts' data: per 10 s, handshakes succeeded and refused, sessions open."""
    console = request.app[CONSOLE]
    now = read_sample(console.relay.metrics, time.time())
    return web.json_response(console.history.series(now), headers={"Cache-Control": "no-store"})


@routes.get("/channels", name="channels")
async def channels(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    rows = channel_status(console.relay.router)
    failures: dict[str, list[dict[str, Any]]] = {r["name"]: [] for r in rows}
    store_error = None
    try:
        refusals = await console.relay.parts.store.refusals(limit=_FAILURE_ROWS)
    except Exception:
        _log.warning("console: refusals unavailable", exc_info=True)
        refusals, store_error = [], "The store cannot be read right now."
    for refusal in refusals:
        for attempt in refusal.channels_tried:
            if attempt.outcome != "ok" and attempt.channel in failures:
                failures[attempt.channel].append(
                    {
                        "at": refusal.at,
                        "outcome": attempt.outcome,
                        "detail": attempt.detail,
                        "code": refusal.error_code,
                        "request_id": refusal.request_id,
                    }
                )
    context = {
        "channels": rows,
        "failures": {name: items[:20] for name, items in failures.items()},
        "store_error": store_error,
        "meaning": error_meaning,
    }
    return page(request, "channels.html", "channels", context)
