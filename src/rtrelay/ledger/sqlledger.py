"""``SqlLedger``: the ``LedgerStore`` job of the SQL store (the writes ``LedgerWriter`` makes).

Session rows (opened, closed), usage rows and refused handshakes are frequent: each
kind is one statement, built once here and run per batch on ``ledger.hotpath``'s
connection. ``RETURNING`` is what keeps a batch one statement: SQLAlchemy then renders
one multi-row ``VALUES`` ("insertmanyvalues") where it would otherwise executemany,
row by row. Triggers (revision 0002) copy the session's key onto each usage row and
add its cost to the key's spend, so no path can write usage without billing it.

Dialect differences stay in ``schema`` (column types) and ``engine`` (SQLite set-up);
the only branch here is which ``INSERT … ON CONFLICT`` construct to use, and both
render the same SQL. Start-up and upkeep (``mark_interrupted``, ``prune``) are rare
and run as ordinary transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from rtrelay.ledger.engine import begin_write
from rtrelay.ledger.exceptions import SessionExists, StoreError, UnknownSession
from rtrelay.ledger.hotpath import HotConnection, open_hot_connection
from rtrelay.ledger.records import (
    Refusal,
    RefusalCount,
    ResponseRecord,
    SessionEnd,
    SessionStart,
    TranscriptionRecord,
    UsageRecord,
    minute_of,
)
from rtrelay.ledger.schema import (
    TOKEN_COLUMNS,
    refusal_counts,
    refusals,
    sessions,
    usage_records,
)

__all__ = ["SqlLedger"]

_OPEN: Final = ("live", "interrupted")
"""Statuses a session can still be closed from."""


class SqlLedger:
    """Writes ledger records; every write is one statement, atomic on its own.

    ``connect`` opens the hot connection (``open_store`` calls it, so start-up fails
    loudly and the first write is fast); ``close`` closes it, not the engine.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._usage_insert = (
            insert(usage_records)
            .on_conflict_do_nothing(index_elements=["session_id", "kind", "ref"])
            .returning(usage_records.c.id)
        )
        self._sessions_insert = sessions.insert().returning(sessions.c.id)
        self._refusals_insert = (
            insert(refusals)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(refusals.c.id)
        )
        counts = insert(refusal_counts)
        self._counts_upsert = counts.on_conflict_do_update(
            index_elements=["minute", "error_code", "key_prefix"],
            set_={"count": refusal_counts.c["count"] + counts.excluded["count"]},
        ).returning(refusal_counts.c.id)
        self._hot: HotConnection = open_hot_connection(engine)

    async def connect(self) -> None:
        await self._hot.connect()

    async def close(self) -> None:
        await self._hot.close()

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def open_sessions(self, starts: Sequence[SessionStart]) -> None:
        if not starts:
            return
        try:
            await self._hot.execute(self._sessions_insert, [_start_row(s) for s in starts])
        except IntegrityError as exc:
            ids = {s.session_id for s in starts}
            existing = ids - await self._missing_sessions(ids)
            if existing:
                raise SessionExists(sorted(existing)) from exc
            names = ", ".join(sorted(ids))
            raise StoreError(f"cannot open {names}: a duplicate id or an unknown key") from exc

    async def record_usage(self, records: Sequence[UsageRecord]) -> int:
        if not records:
            return 0
        try:
            result = await self._hot.execute(self._usage_insert, [_usage_row(r) for r in records])
        except IntegrityError:
            missing = await self._missing_sessions({r.session_id for r in records})
            if missing:
                raise UnknownSession(", ".join(sorted(missing))) from None
            raise
        return len(result)

    async def _missing_sessions(self, session_ids: set[str]) -> set[str]:
        query = sa.select(sessions.c.id).where(sessions.c.id.in_(session_ids))
        async with self._engine.connect() as conn:
            found = set((await conn.execute(query)).scalars())
        return session_ids - found

    async def close_session(self, end: SessionEnd) -> bool:
        closing = (
            sessions.update()
            .where(sessions.c.id == end.session_id, sessions.c.status.in_(_OPEN))
            .values(**_end_values(end))
            .returning(sessions.c.id)
        )
        if await self._hot.execute(closing, [{}]):
            return True
        if await self._missing_sessions({end.session_id}):
            raise UnknownSession(end.session_id)
        return False  # already closed: the first close wins

    async def record_refusals(self, items: Sequence[Refusal]) -> None:
        if items:
            await self._hot.execute(self._refusals_insert, [_refusal_row(r) for r in items])

    async def record_refusal_counts(self, counts: Sequence[RefusalCount]) -> None:
        if counts:
            await self._hot.execute(self._counts_upsert, [_count_row(c) for c in counts])

    async def prune(self, before: datetime, *, limit: int = 1000) -> dict[str, int]:
        """Delete up to ``limit`` rows per kind older than ``before``; usage rows never.

        Refusals and refusal counters go by age; a session only once it is over
        and has no usage row (usage is money, and its session stays with it).
        """
        u = usage_records.c
        unbilled = ~sa.exists().where(u.session_id == sessions.c.id)
        targets: list[tuple[str, sa.Table, sa.ColumnElement[bool]]] = [
            ("refusals", refusals, refusals.c.at < before),
            ("refusal_counts", refusal_counts, refusal_counts.c.minute < before),
            (
                "sessions",
                sessions,
                sa.and_(sessions.c.status != "live", sessions.c.started_at < before, unbilled),
            ),
        ]
        deleted: dict[str, int] = {}
        for name, table, old in targets:
            batch = sa.select(table.c.id).where(old).limit(max(1, limit))
            async with begin_write(self._engine) as conn:
                result = await conn.execute(table.delete().where(table.c.id.in_(batch)))
            deleted[name] = int(result.rowcount)
        return deleted

    async def mark_interrupted(self, *, node: str | None = None) -> int:
        update = sessions.update().where(sessions.c.status == "live")
        if node is not None:
            update = update.where(sessions.c.node == node)
        async with begin_write(self._engine) as conn:
            result = await conn.execute(update.values(status="interrupted"))
        return int(result.rowcount)


def _start_row(start: SessionStart) -> dict[str, Any]:
    return {
        "id": start.session_id,
        "key_id": start.key_id,
        "key_prefix": start.key_prefix,
        "model": start.model,
        "channel": start.channel,
        "status": "live",
        "shape": start.shape,
        "origin": start.origin,
        "request_id": start.request_id,
        "node": start.node,
        "started_at": start.started_at,
        "channels_tried": start.channels_tried,
        "transport": start.transport,
    }


def _end_values(end: SessionEnd) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": end.status,
        "ended_at": end.ended_at,
        "duration_ms": round(end.duration_s * 1000),
        "frames_from_client": end.frames_from_client,
        "bytes_from_client": end.bytes_from_client,
        "frames_from_upstream": end.frames_from_upstream,
        "bytes_from_upstream": end.bytes_from_upstream,
        "client_close_code": end.client_close_code,
        "upstream_close_code": end.upstream_close_code,
        "error_code": end.error_code,
    }
    if end.channels_tried is not None:
        values["channels_tried"] = end.channels_tried
    return values


def _usage_row(record: UsageRecord) -> dict[str, Any]:
    if isinstance(record, ResponseRecord):
        kind, ref, status = "response", record.response_id, record.status
    elif isinstance(record, TranscriptionRecord):
        kind, ref, status = "transcription", record.item_id, None
    else:
        kind, ref, status = "duration", record.ref, None
    usage = record.usage
    return {
        "session_id": record.session_id,
        "kind": kind,
        "ref": ref,
        "model": record.model,
        "status": status,
        "at": record.at,
        "unit": usage.unit,
        "seconds": usage.seconds,
        "cost_usd": record.cost_usd,
        "priced": record.cost_usd is not None,
        **{c: getattr(usage, c) for c in TOKEN_COLUMNS},
    }


def _refusal_row(refusal: Refusal) -> dict[str, Any]:
    return {
        "request_id": refusal.request_id,
        "key_id": refusal.key_id,
        "key_prefix": refusal.key_prefix,
        "model": refusal.model,
        "origin": refusal.origin,
        "error_code": refusal.error_code,
        "http_status": refusal.http_status,
        "close_code": refusal.close_code,
        "at": refusal.at,
        "channels_tried": refusal.channels_tried,
    }


def _count_row(count: RefusalCount) -> dict[str, Any]:
    return {
        "minute": minute_of(count.minute),
        "error_code": count.error_code,
        "key_prefix": count.key_prefix or "",
        "key_id": count.key_id,
        "count": count.count,
    }
