"""``SqlStore``: the one ``Store``, in SQLAlchemy Core, for SQLite and PostgreSQL alike.

Dialect differences stay in ``schema`` (column types, the day function) and
``engine`` (SQLite set-up); the only branch here is which ``INSERT … ON CONFLICT``
construct to use, and both render the same SQL.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rtrelay.ledger.engine import WRITE
from rtrelay.ledger.exceptions import KeyNotFound, KeyRevoked, StoreError, UnknownSession
from rtrelay.ledger.hotpath import HotWriter, open_hot_writer
from rtrelay.ledger.keys import (
    KeyRecord,
    KeySpec,
    hash_secret,
    new_key_id,
    new_secret,
    secret_matches,
    split_secret,
)
from rtrelay.ledger.records import (
    ChannelAttempt,
    Grouping,
    Refusal,
    RefusalCount,
    ResponseRecord,
    SessionEnd,
    SessionRow,
    SessionStart,
    TranscriptionRecord,
    UsageRecord,
    UsageRow,
)
from rtrelay.ledger.schema import (
    api_key_secrets,
    api_keys,
    refusal_counts,
    refusals,
    sessions,
    usage_records,
)
from rtrelay.ledger.schema import utc_day as utc_day_fn

__all__ = ["SqlStore"]

_PREFIX_ATTEMPTS: Final = 5
_OPEN: Final = ("live", "interrupted")
"""Statuses a session can still be closed from."""
_TOKEN_COLUMNS: Final = (
    "input_text",
    "input_audio",
    "input_image",
    "cached_text",
    "cached_audio",
    "cached_image",
    "output_text",
    "output_audio",
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """Keys, ledger and reports over one ``AsyncEngine`` (see ``open_store``)."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE: True})
        self._clock = clock
        self._insert: Any = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )
        # The hot writes (session rows, usage rows, refused handshakes) are
        # statements built once and run per batch on ``ledger.hotpath``'s connection.
        # RETURNING is what keeps a batch one statement: SQLAlchemy then renders one
        # multi-row VALUES ("insertmanyvalues") where it would otherwise executemany,
        # row by row. Triggers (revision 0002) copy the session's key onto each usage
        # row and add its cost to the key's spend.
        self._usage_insert = (
            self._insert(usage_records)
            .on_conflict_do_nothing(index_elements=["session_id", "kind", "ref"])
            .returning(usage_records.c.id)
        )
        self._sessions_insert = sessions.insert().returning(sessions.c.id)
        self._refusals_insert = (
            self._insert(refusals)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(refusals.c.id)
        )
        counts = self._insert(refusal_counts)
        self._counts_upsert = counts.on_conflict_do_update(
            index_elements=["minute", "error_code", "key_prefix"],
            set_={"count": refusal_counts.c["count"] + counts.excluded["count"]},
        ).returning(refusal_counts.c.id)
        self._hot: HotWriter = open_hot_writer(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def connect(self) -> None:
        """Open the connections the ledger writes through (``open_store`` calls this)."""
        await self._hot.connect()

    async def close(self) -> None:
        await self._hot.close()
        await self._engine.dispose()

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # -- keys ---------------------------------------------------------------------------

    async def create_key(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        now = self._clock()
        key_id = new_key_id()
        for attempt in range(_PREFIX_ATTEMPTS):
            prefix, secret = new_secret()
            try:
                async with self._writer.begin() as conn:
                    await conn.execute(
                        api_keys.insert().values(
                            id=key_id,
                            prefix=prefix,
                            name=spec.name,
                            models=_dump_names(spec.models),
                            max_sessions=spec.max_sessions,
                            sessions_per_minute=spec.sessions_per_minute,
                            budget_usd=spec.budget_usd,
                            origins=_dump_names(spec.origins),
                            spent_usd=Decimal(0),
                            created_at=now,
                            expires_at=spec.expires_at,
                        )
                    )
                    await self._add_secret(conn, key_id, prefix, secret, now)
            except IntegrityError:
                if attempt == _PREFIX_ATTEMPTS - 1:
                    raise
                continue  # a prefix collision (1 in 36**8): draw again
            record = await self.get_key(key_id)
            assert record is not None
            return record, secret
        raise AssertionError("unreachable")

    async def _add_secret(
        self, conn: AsyncConnection, key_id: str, prefix: str, secret: str, now: datetime
    ) -> None:
        await conn.execute(
            api_key_secrets.insert().values(
                prefix=prefix, key_id=key_id, secret_sha256=hash_secret(secret), created_at=now
            )
        )

    async def find_key(self, secret: str) -> KeyRecord | None:
        prefix = split_secret(secret)
        if prefix is None:
            return None
        query = (
            sa.select(api_keys, api_key_secrets.c.secret_sha256, api_key_secrets.c.retired_at)
            .join(api_key_secrets, api_key_secrets.c.key_id == api_keys.c.id)
            .where(api_key_secrets.c.prefix == prefix)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or not secret_matches(secret, row.secret_sha256):
            return None
        record = _key_record(row)
        # A secret retired by rotation reads as revoked, so the caller can say why.
        retired = row.retired_at
        if retired is not None and (record.revoked_at is None or retired < record.revoked_at):
            return dataclasses.replace(record, prefix=prefix, revoked_at=retired)
        return dataclasses.replace(record, prefix=prefix)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
        return None if row is None else _key_record(row)

    async def get_key_by_prefix(self, prefix: str) -> KeyRecord | None:
        query = (
            sa.select(api_keys)
            .join(api_key_secrets, api_key_secrets.c.key_id == api_keys.c.id)
            .where(api_key_secrets.c.prefix == prefix)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _key_record(row)

    async def list_keys(self) -> list[KeyRecord]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_key_record(r) for r in rows]

    async def revoke_key(self, key_id: str) -> KeyRecord:
        async with self._writer.begin() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
        if row is None:
            raise KeyNotFound(key_id)
        return _key_record(row)

    async def rotate_key(self, key_id: str) -> tuple[KeyRecord, str]:
        now = self._clock()
        for attempt in range(_PREFIX_ATTEMPTS):
            prefix, secret = new_secret()
            try:
                async with self._writer.begin() as conn:
                    # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises):
                    # two rotations at once must not leave two live secrets.
                    locked = sa.select(api_keys).where(api_keys.c.id == key_id).with_for_update()
                    row = (await conn.execute(locked)).first()
                    if row is None:
                        raise KeyNotFound(key_id)
                    if row.revoked_at is not None:
                        raise KeyRevoked(key_id)
                    await conn.execute(
                        api_key_secrets.update()
                        .where(
                            api_key_secrets.c.key_id == key_id,
                            api_key_secrets.c.retired_at.is_(None),
                        )
                        .values(retired_at=now)
                    )
                    await self._add_secret(conn, key_id, prefix, secret, now)
                    await conn.execute(
                        api_keys.update().where(api_keys.c.id == key_id).values(prefix=prefix)
                    )
            except IntegrityError:
                if attempt == _PREFIX_ATTEMPTS - 1:
                    raise
                continue
            record = await self.get_key(key_id)
            assert record is not None
            return record, secret
        raise AssertionError("unreachable")

    async def spent_usd(self, key_id: str) -> Decimal:
        # A running total kept in the same transaction as each ledger row: O(1).
        query = sa.select(api_keys.c.spent_usd).where(api_keys.c.id == key_id)
        async with self._engine.connect() as conn:
            value = (await conn.execute(query)).scalar()
        return Decimal(0) if value is None else value

    # -- ledger -------------------------------------------------------------------------

    async def open_session(self, start: SessionStart) -> None:
        await self.open_sessions((start,))

    async def open_sessions(self, starts: Sequence[SessionStart]) -> None:
        if not starts:
            return
        try:
            await self._hot.execute(self._sessions_insert, [_start_row(s) for s in starts])
        except IntegrityError as exc:
            ids = ", ".join(repr(s.session_id) for s in starts)
            raise StoreError(f"cannot open session {ids}: duplicate id or unknown key") from exc

    async def record_response(self, record: ResponseRecord) -> bool:
        return await self.record_usage((record,)) == 1

    async def record_transcription(self, record: TranscriptionRecord) -> bool:
        return await self.record_usage((record,)) == 1

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
        if end.duration_s is None:
            return await self._close_session_timed_by_start(end)
        # What the relay sends (it times sessions itself): one UPDATE on the hot path.
        closing = (
            sessions.update()
            .where(sessions.c.id == end.session_id, sessions.c.status.in_(_OPEN))
            .values(**_end_values(end, end.duration_s))
            .returning(sessions.c.id)
        )
        if await self._hot.execute(closing, [{}]):
            return True
        if await self._missing_sessions({end.session_id}):
            raise UnknownSession(end.session_id)
        return False  # already closed: the first close wins

    async def _close_session_timed_by_start(self, end: SessionEnd) -> bool:
        async with self._writer.begin() as conn:
            query = sa.select(sessions.c.started_at, sessions.c.status).where(
                sessions.c.id == end.session_id
            )
            row = (await conn.execute(query)).first()
            if row is None:
                raise UnknownSession(end.session_id)
            if row.status not in _OPEN:
                return False  # already closed: the first close wins
            duration_s = max((end.ended_at - row.started_at).total_seconds(), 0.0)
            await conn.execute(
                sessions.update()
                .where(sessions.c.id == end.session_id)
                .values(**_end_values(end, duration_s))
            )
        return True

    async def record_refusal(self, refusal: Refusal) -> None:
        await self.record_refusals((refusal,))

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
            async with self._writer.begin() as conn:
                result = await conn.execute(table.delete().where(table.c.id.in_(batch)))
            deleted[name] = int(result.rowcount)
        return deleted

    async def mark_interrupted(self, *, node: str | None = None) -> int:
        update = sessions.update().where(sessions.c.status == "live")
        if node is not None:
            update = update.where(sessions.c.node == node)
        async with self._writer.begin() as conn:
            result = await conn.execute(update.values(status="interrupted"))
        return int(result.rowcount)

    # -- reports ------------------------------------------------------------------------

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
        columns += [sa.func.coalesce(sa.func.sum(u[c]), 0).label(c) for c in _TOKEN_COLUMNS]
        columns += [
            sa.func.coalesce(sa.func.sum(u.transcription_seconds), 0).label("seconds"),
            sa.func.coalesce(sa.func.sum(u.cost_usd), 0).label("cost"),
            sa.func.count(sa.case((u.kind == "response", 1))).label("responses"),
            sa.func.count(sa.case((u.kind == "transcription", 1))).label("transcriptions"),
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
                transcription_seconds=r.seconds,
                cost_usd=r.cost,
                responses=int(r.responses),
                transcriptions=int(r.transcriptions),
                unpriced=int(r.unpriced),
                sessions=int(r.sessions),
                **{c: int(getattr(r, c)) for c in _TOKEN_COLUMNS},
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

    async def get_session(self, session_id: str) -> SessionRow | None:
        query = _sessions_page([sessions.c.id == session_id], limit=1)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _session_row(row)

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
                channels_tried=_load_attempts(r.channels_tried),
            )
            for r in rows
        ]

    async def refusal_totals(
        self, *, key_id: str | None = None, since: datetime | None = None
    ) -> dict[str, int]:
        rows = sa.select(refusals.c.error_code, sa.func.count().label("n"))
        counted = sa.select(
            refusal_counts.c.error_code, sa.func.sum(refusal_counts.c["count"]).label("n")
        )
        if key_id is not None:
            rows = rows.where(refusals.c.key_id == key_id)
            counted = counted.where(refusal_counts.c.key_id == key_id)
        if since is not None:
            rows = rows.where(refusals.c.at >= since)
            counted = counted.where(refusal_counts.c.minute >= _minute(since))
        totals: dict[str, int] = {}
        async with self._engine.connect() as conn:
            for query in (
                rows.group_by(refusals.c.error_code),
                counted.group_by(refusal_counts.c.error_code),
            ):
                for code, n in (await conn.execute(query)).all():
                    totals[code] = totals.get(code, 0) + int(n)
        return totals


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _count_row(count: RefusalCount) -> dict[str, Any]:
    return {
        "minute": _minute(count.minute),
        "error_code": count.error_code,
        "key_prefix": count.key_prefix or "",
        "key_id": count.key_id,
        "count": count.count,
    }


def _end_values(end: SessionEnd, duration_s: float) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": end.status,
        "ended_at": end.ended_at,
        "duration_ms": round(duration_s * 1000),
        "frames_from_client": end.frames_from_client,
        "bytes_from_client": end.bytes_from_client,
        "frames_from_upstream": end.frames_from_upstream,
        "bytes_from_upstream": end.bytes_from_upstream,
        "client_close_code": end.client_close_code,
        "upstream_close_code": end.upstream_close_code,
        "error_code": end.error_code,
    }
    if end.channels_tried is not None:
        values["channels_tried"] = _dump_attempts(end.channels_tried)
    return values


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
        "channels_tried": _dump_attempts(refusal.channels_tried),
    }


def _start_row(start: SessionStart) -> dict[str, Any]:
    return {
        "id": start.session_id,
        "key_id": start.key_id,
        "key_prefix": start.key_prefix,
        "model": start.model,
        "channel": start.channel,
        "status": "live",
        "client_kind": start.client_kind,
        "shape": start.shape,
        "origin": start.origin,
        "request_id": start.request_id,
        "node": start.node,
        "started_at": start.started_at,
        "channels_tried": _dump_attempts(start.channels_tried),
    }


def _usage_row(record: UsageRecord) -> dict[str, Any]:
    if isinstance(record, ResponseRecord):
        kind, ref, status = "response", record.response_id, record.status
    else:
        kind, ref, status = "transcription", record.item_id, None
    usage = record.usage
    return {
        "session_id": record.session_id,
        "kind": kind,
        "ref": ref,
        "model": record.model,
        "status": status,
        "at": record.at,
        "transcription_seconds": usage.transcription_seconds,
        "cost_usd": record.cost_usd,
        "priced": record.cost_usd is not None,
        **{c: getattr(usage, c) for c in _TOKEN_COLUMNS},
    }


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
        )
        .where(u.session_id.in_(sa.select(page.c.id)))
        .group_by(u.session_id)
        .subquery("totals")
    )
    return (
        sa.select(page, totals.c.responses, totals.c.cost, totals.c.unpriced)
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


def _dump_names(names: Sequence[str] | None) -> str | None:
    return None if names is None else json.dumps(list(names))


def _load_names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(json.loads(text))


def _dump_attempts(attempts: Sequence[ChannelAttempt]) -> str:
    return json.dumps(
        [{"channel": a.channel, "outcome": a.outcome, "detail": a.detail} for a in attempts]
    )


def _load_attempts(text: str | None) -> tuple[ChannelAttempt, ...]:
    if not text:
        return ()
    return tuple(
        ChannelAttempt(channel=a["channel"], outcome=a["outcome"], detail=a.get("detail"))
        for a in json.loads(text)
    )


def _key_record(row: Row[Any]) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        models=_load_names(row.models),
        max_sessions=row.max_sessions,
        sessions_per_minute=row.sessions_per_minute,
        budget_usd=row.budget_usd,
        origins=_load_names(row.origins),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
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
        client_kind=row.client_kind,
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
        channels_tried=_load_attempts(row.channels_tried),
        responses=int(row.responses or 0),
        cost_usd=row.cost if row.cost is not None else Decimal(0),
        unpriced=int(row.unpriced or 0),
    )
