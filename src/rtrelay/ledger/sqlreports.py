"""``SqlReports``: the ``ReportStore`` job of the SQL store (what operators read back).

Read-only queries for ``rtrelay usage``, the admin API and the dashboard's tables:
usage summed per key, model or UTC day, sessions with their usage, refused
handshakes. They never touch the hot connection the ledger writes through.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from rtrelay.ledger.prices import Usage
from rtrelay.ledger.records import (
    DurationRecord,
    Grouping,
    Refusal,
    ResponseRecord,
    SessionRow,
    TranscriptionRecord,
    UsageRecord,
    UsageRow,
)
from rtrelay.ledger.schema import TOKEN_COLUMNS, api_keys, refusals, sessions, usage_records
from rtrelay.ledger.schema import utc_day as utc_day_fn

__all__ = ["SqlReports"]

_SESSION_USAGE_ROWS: Final = 10_000
"""Responses listed for one session at most (a day-long session has a few thousand)."""


class SqlReports:
    """Usage, sessions and refusals, newest first where they are listed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def usage(
        self,
        *,
        key_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        by: Grouping = "key",
    ) -> list[UsageRow]:
        u = usage_records.c
        group: sa.ColumnElement[Any]
        if by == "key":
            group = u.key_id
        elif by == "model":
            group = u.model
        elif by == "day":
            group = utc_day_fn(u.at)
        else:
            raise ValueError(f"by must be 'key', 'model' or 'day', not {by!r}")
        name = api_keys.c.name if by == "key" else sa.null()
        columns: list[Any] = [group.label("grp"), name.label("name")]
        columns += [sa.func.coalesce(sa.func.sum(u[c]), 0).label(c) for c in TOKEN_COLUMNS]
        columns += [
            sa.func.coalesce(sa.func.sum(u.seconds), 0).label("seconds"),
            sa.func.coalesce(sa.func.sum(u.cost_usd), 0).label("cost"),
            sa.func.count(sa.case((u.kind == "response", 1))).label("responses"),
            sa.func.count(sa.case((u.kind == "transcription", 1))).label("transcriptions"),
            sa.func.count(sa.case((u.kind == "duration", 1))).label("durations"),
            sa.func.count(sa.case((u.priced.is_(False), 1))).label("unpriced"),
            sa.func.count(sa.distinct(u.session_id)).label("sessions"),
        ]
        source = usage_records.outerjoin(api_keys, api_keys.c.id == u.key_id)
        query = sa.select(*columns).select_from(source)
        query = query.where(*_window(u.at, since, until))
        if key_id is not None:
            query = query.where(u.key_id == key_id)
        group_by: list[Any] = [group] if by != "key" else [group, api_keys.c.name]
        query = query.group_by(*group_by).order_by(group)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            UsageRow(
                group=None if r.grp is None else str(r.grp),
                name=r.name,
                seconds=r.seconds,
                cost_usd=r.cost,
                responses=int(r.responses),
                transcriptions=int(r.transcriptions),
                durations=int(r.durations),
                unpriced=int(r.unpriced),
                sessions=int(r.sessions),
                **{c: int(getattr(r, c)) for c in TOKEN_COLUMNS},
            )
            for r in rows
        ]

    async def sessions(
        self,
        *,
        key_id: str | None = None,
        since: datetime | None = None,
        live_only: bool = False,
        limit: int = 100,
    ) -> list[SessionRow]:
        where: list[sa.ColumnElement[bool]] = []
        if key_id is not None:
            where.append(sessions.c.key_id == key_id)
        if since is not None:
            where.append(sessions.c.started_at >= since)
        if live_only:
            where.append(sessions.c.status == "live")
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_sessions_page(where, limit=max(0, limit)))).all()
        return [_session_row(r) for r in rows]

    async def session(self, session_id: str) -> SessionRow | None:
        query = _sessions_page([sessions.c.id == session_id], limit=1)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _session_row(row)

    async def session_usage(self, session_id: str) -> list[UsageRecord]:
        u = usage_records.c
        query = (
            sa.select(usage_records)
            .where(u.session_id == session_id)
            .order_by(u.at, u.id)
            .limit(_SESSION_USAGE_ROWS)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_usage_record(r) for r in rows]

    async def refusals(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Refusal]:
        query = sa.select(refusals).order_by(refusals.c.at.desc(), refusals.c.id.desc())
        if key_id is not None:
            query = query.where(refusals.c.key_id == key_id)
        if since is not None:
            query = query.where(refusals.c.at >= since)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.limit(max(0, limit)))).all()
        return [
            Refusal(
                request_id=r.request_id,
                error_code=r.error_code,
                http_status=r.http_status,
                at=r.at,
                key_id=r.key_id,
                key_prefix=r.key_prefix,
                model=r.model,
                origin=r.origin,
                close_code=r.close_code,
                channels_tried=r.channels_tried,
            )
            for r in rows
        ]


def _sessions_page(where: list[sa.ColumnElement[bool]], *, limit: int) -> sa.Select[Any]:
    """One page of sessions, newest first, with usage summed over *that page only*.

    The page is chosen first (a CTE) so the usage aggregate touches only its
    sessions' rows (via the (session_id, kind, ref) index), not the whole ledger.
    """
    page = (
        sa.select(sessions)
        .where(*where)
        .order_by(sessions.c.started_at.desc(), sessions.c.id)
        .limit(limit)
        .cte("page")
    )
    u = usage_records.c
    totals = (
        sa.select(
            u.session_id,
            sa.func.count(sa.case((u.kind == "response", 1))).label("responses"),
            sa.func.coalesce(sa.func.sum(u.cost_usd), 0).label("cost"),
            sa.func.count(sa.case((u.priced.is_(False), 1))).label("unpriced"),
            sa.func.coalesce(sa.func.sum(u.seconds), 0).label("seconds"),
        )
        .where(u.session_id.in_(sa.select(page.c.id)))
        .group_by(u.session_id)
        .subquery("totals")
    )
    return (
        sa.select(page, totals.c.responses, totals.c.cost, totals.c.unpriced, totals.c.seconds)
        .select_from(page.outerjoin(totals, totals.c.session_id == page.c.id))
        .order_by(page.c.started_at.desc(), page.c.id)
    )


def _window(
    column: sa.ColumnElement[Any], since: datetime | None, until: datetime | None
) -> list[sa.ColumnElement[bool]]:
    """``since`` inclusive, ``until`` exclusive."""
    out: list[sa.ColumnElement[bool]] = []
    if since is not None:
        out.append(column >= since)
    if until is not None:
        out.append(column < until)
    return out


def _usage_record(row: Row[Any]) -> UsageRecord:
    usage = Usage(
        seconds=row.seconds,
        **{c: int(getattr(row, c)) for c in TOKEN_COLUMNS},
    )
    if row.kind == "transcription":
        return TranscriptionRecord(
            session_id=row.session_id,
            item_id=row.ref,
            model=row.model,
            usage=usage,
            cost_usd=row.cost_usd,
            at=row.at,
        )
    if row.kind == "duration":
        return DurationRecord(
            session_id=row.session_id,
            ref=row.ref,
            model=row.model,
            usage=usage,
            cost_usd=row.cost_usd,
            at=row.at,
        )
    return ResponseRecord(
        session_id=row.session_id,
        response_id=row.ref,
        model=row.model,
        status=row.status or "",
        usage=usage,
        cost_usd=row.cost_usd,
        at=row.at,
    )


def _session_row(row: Row[Any]) -> SessionRow:
    return SessionRow(
        session_id=row.id,
        key_id=row.key_id,
        key_prefix=row.key_prefix,
        model=row.model,
        channel=row.channel,
        status=row.status,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_s=None if row.duration_ms is None else row.duration_ms / 1000,
        shape=row.shape,
        origin=row.origin,
        request_id=row.request_id,
        node=row.node,
        frames_from_client=row.frames_from_client,
        bytes_from_client=row.bytes_from_client,
        frames_from_upstream=row.frames_from_upstream,
        bytes_from_upstream=row.bytes_from_upstream,
        client_close_code=row.client_close_code,
        upstream_close_code=row.upstream_close_code,
        error_code=row.error_code,
        channels_tried=row.channels_tried,
        responses=int(row.responses or 0),
        cost_usd=row.cost if row.cost is not None else Decimal(0),
        unpriced=int(row.unpriced or 0),
        transport=row.transport,
        seconds=row.seconds if row.seconds is not None else Decimal(0),
    )
