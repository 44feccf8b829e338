"""The sessions pages: live and past sessions, one session's timeline, ending a live one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from aiohttp import web

from rtrelay.console.filters import SessionFilter, session_filter
from rtrelay.console.overview import error_meaning, session_kind
from rtrelay.console.signin import see_other
from rtrelay.console.state import CONSOLE, Console, error_page, page
from rtrelay.errors import EndedByOperator
from rtrelay.ledger.keys import KeyRecord, text_problem
from rtrelay.ledger.records import DurationRecord, ResponseRecord, SessionRow, UsageRecord
from rtrelay.ledger.store import resolve_key

if TYPE_CHECKING:
    from rtrelay.edge.session_run import SessionRun

__all__ = ["TimelineEntry", "routes", "timeline"]

routes: Final = web.RouteTableDef()
_log = logging.getLogger("rtrelay.console")
_PAGE_ROWS: Final = 100
_SCAN_ROWS: Final = 1000
"""Rows read when a filter the store cannot apply (model, close code, until) drops some."""


async def _find_key(console: Console, ref: str) -> KeyRecord | None:
    if not ref or text_problem(ref) is not None:
        return None
    return await resolve_key(console.relay.parts.store, ref)


def _live_view(run: SessionRun, now: datetime) -> dict[str, Any]:
    view = run.describe()
    protocol, transport = session_kind(run)
    view.update(
        key_id=run.admission.key_id,
        protocol=protocol,
        transport=transport,
        started_at=now - timedelta(seconds=view["age_seconds"]),
    )
    return view


async def _lists(console: Console, f: SessionFilter, *, past: bool) -> dict[str, Any]:
    """Live sessions of this process and, with ``past``, the ledger's rows, filtered."""
    now = console.clock()
    key: KeyRecord | None = None
    errors = dict(f.errors)
    if f.key:
        key = await _find_key(console, f.key)
        if key is None:
            errors["key"] = "no such key (give its id, its prefix or the start of its secret)"
    live = []
    if not (f.key and key is None):
        for run in list(console.relay.sessions.values()):
            view = _live_view(run, now)
            if key is not None and view["key_id"] != key.id:
                continue
            if f.since is not None and view["started_at"] < f.since:
                continue
            if f.keeps(model=view["model"] or "", codes=(), started=view["started_at"], live=True):
                live.append(view)
    rows: list[SessionRow] = []
    if past and not (f.key and key is None) and f.status != "live":
        fetched = await console.relay.parts.store.sessions(
            key_id=None if key is None else key.id,
            since=f.since,
            limit=_SCAN_ROWS if f.narrows_rows else _PAGE_ROWS,
        )
        rows = [
            r
            for r in fetched
            if f.keeps(
                model=r.model,
                codes=(r.client_close_code, r.upstream_close_code),
                started=r.started_at,
                live=r.status == "live",
            )
        ][:_PAGE_ROWS]
    return {
        "live": sorted(live, key=lambda v: v["started_at"], reverse=True),
        "rows": rows,
        "here": set(console.relay.sessions),
        "filter": f,
        "errors": errors,
        "meaning": error_meaning,
    }


@routes.get("/sessions", name="sessions")
async def sessions(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    f = session_filter(request.query, console.clock())
    context = await _lists(console, f, past=True)
    context["ended"] = request.query.get("ended")
    return page(request, "sessions.html", "sessions", context)


@routes.get("/live-sessions", name="live_sessions")
async def live_sessions(request: web.Request) -> web.Response:
    """The live table alone, for the sessions page's htmx poll."""
    console = request.app[CONSOLE]
    f = session_filter(request.query, console.clock())
    return page(request, "_live_sessions.html", "sessions", await _lists(console, f, past=False))


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of a session's timeline."""

    at: datetime | None
    what: str
    detail: str = ""


def _usage_line(record: UsageRecord) -> TimelineEntry:
    u = record.usage
    cost = "unpriced" if record.cost_usd is None else f"${record.cost_usd:f}"
    if isinstance(record, ResponseRecord):
        detail = (
            f"{record.status}; {u.input_tokens} tokens in ({u.input_audio} audio, "
            f"{u.cached_text + u.cached_audio + u.cached_image} cached), {u.output_tokens} "
            f"out ({u.output_audio} audio); {cost}"
        )
        return TimelineEntry(record.at, f"response {record.response_id}", detail)
    if isinstance(record, DurationRecord):
        detail = f"{record.model}; {u.seconds} s of audio; {cost}"
        return TimelineEntry(record.at, f"audio {record.ref}", detail)
    seconds = f"{u.seconds} s, " if u.seconds else ""
    detail = f"{record.model}; {seconds}{u.input_tokens} tokens in, {u.output_tokens} out; {cost}"
    return TimelineEntry(record.at, f"transcription {record.item_id}", detail)


def timeline(
    row: SessionRow | None,
    usage: list[UsageRecord],
    live: dict[str, Any] | None,
    *,
    first_event_s: float | None = None,
) -> list[TimelineEntry]:
    """A session's story: handshake, channel attempts, first event, each response with
    its usage and cost, and how it ended (both close codes, the error). Pure."""
    out: list[TimelineEntry] = []
    started = row.started_at if row is not None else (live or {}).get("started_at")
    if row is not None:
        shape = "beta" if row.shape == "beta" else "GA"
        origin = f", Origin {row.origin}" if row.origin else ""
        out.append(
            TimelineEntry(
                row.started_at,
                "handshake admitted",
                f"request {row.request_id or '-'}, key {row.key_prefix or '(none)'}, "
                f"model {row.model}, {shape} shape{origin}",
            )
        )
        for attempt in row.channels_tried:
            text = attempt.outcome + (f" in {attempt.detail}" if attempt.detail else "")
            out.append(TimelineEntry(row.started_at, f"dial {attempt.channel}", text))
        out.append(TimelineEntry(row.started_at, "session open", f"channel {row.channel}"))
    elif live is not None:
        out.append(TimelineEntry(started, "session open", f"channel {live['channel']}"))
    if first_event_s is not None and isinstance(started, datetime):
        out.append(
            TimelineEntry(
                started + timedelta(seconds=first_event_s),
                "first provider event",
                f"{first_event_s * 1000:.0f} ms after the upgrade request",
            )
        )
    out.extend(_usage_line(r) for r in usage)
    if row is not None and row.status != "live":
        text = f"close codes: client {row.client_close_code or '-'}, "
        text += f"provider {row.upstream_close_code or '-'}"
        if row.error_code:
            text += f"; error {row.error_code}: {error_meaning(row.error_code)}"
        out.append(TimelineEntry(row.ended_at, f"session {row.status}", text))
    return out


@routes.get("/sessions/{session_id}", name="session")
async def session_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    session_id = request.match_info["session_id"]
    store = console.relay.parts.store
    run = console.relay.sessions.get(session_id)
    row = await store.session(session_id) if text_problem(session_id) is None else None
    if row is None and run is None:
        message = f"No session {session_id[:80]!r}."
        return error_page(request, "sessions", "No such session", message, status=404)
    usage = await store.session_usage(session_id) if row is not None else []
    live = None if run is None else _live_view(run, console.clock())
    first = None
    if run is not None and run.bridge.first_frame_at:
        first = run.bridge.first_frame_at - run.arrived
    context = {
        "session_id": session_id,
        "row": row,
        "live": live,
        "events": timeline(row, usage, live, first_event_s=first),
        "cost": sum((r.cost_usd or Decimal(0) for r in usage), Decimal(0)),
        "ended": request.query.get("ended"),
        "meaning": error_meaning,
    }
    return page(request, "session.html", "sessions", context)


@routes.post("/sessions/{session_id}/end", name="end_session")
async def end_session(request: web.Request) -> web.Response:
    """End a live session the way shutdown does: the client gets the table's error event
    and close (``ended_by_operator``, 1008); usage so far is settled."""
    console = request.app[CONSOLE]
    session_id = request.match_info["session_id"]
    run = console.relay.sessions.get(session_id)
    if run is None:
        message = (
            f"Session {session_id[:80]!r} is not live in this relay process: it has ended, "
            "or another worker or relay holds it (open the console on that one)."
        )
        return error_page(request, "sessions", "Not live here", message, status=409)
    run.bridge.stop(EndedByOperator())
    _log.info(
        "session ended by an operator",
        extra={"event": "console", "session_id": session_id, "request_id": run.hello.request_id},
    )
    return see_other(f"/console/sessions/{quote(session_id, safe='')}?ended=1")
