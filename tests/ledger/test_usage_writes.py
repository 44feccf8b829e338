"""Usage writes in batches, billed by the database's triggers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from test_store import (
    EXAMPLE_COST,
    PRICES,
    T0,
    open_session,
    response,
    session_row,
    write_usage,
)

from rtrelay.ledger import (
    KeySpec,
    Refusal,
    SessionEnd,
    Store,
    StoreError,
    TranscriptionRecord,
    UnknownSession,
    Usage,
    open_store,
)
from rtrelay.ledger.engine import create_engine
from rtrelay.ledger.hotpath import CHECKPOINT_EVERY
from rtrelay.ledger.migrate import upgrade
from rtrelay.ledger.records import SessionStart, UsageRecord
from rtrelay.ledger.sqlstore import SqlStore
from rtrelay.ledger.writer import LedgerWriter
from store_fixtures import postgres_database


def transcription(session_id: str, item_id: str) -> TranscriptionRecord:
    return TranscriptionRecord.priced_by(
        PRICES,
        session_id=session_id,
        item_id=item_id,
        model="whisper-1",
        usage=Usage(seconds=Decimal("12.25")),
        at=T0,
    )


async def test_a_batch_is_written_once_and_billed_to_the_sessions_key(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="k"))
    await open_session(store, "s1", key.id)
    await open_session(store, "anon", None)
    assert await write_usage(store, response("s1", "r0"))
    batch: list[UsageRecord] = [
        response("s1", "r0"),  # already written
        response("s1", "r1"),
        response("s1", "r1"),  # twice in one batch
        transcription("s1", "item_1"),
        response("anon", "r1"),  # no key: metered, billed to nobody
    ]
    assert await store.record_usage(batch) == 3
    assert await store.record_usage(batch) == 0
    whisper = Decimal("0.001225")
    assert await store.spent_usd(key.id) == 2 * EXAMPLE_COST + whisper
    by_key = {row.group: row for row in await store.usage(by="key")}
    assert (by_key[key.id].responses, by_key[key.id].transcriptions) == (2, 1)
    assert by_key[key.id].cost_usd == 2 * EXAMPLE_COST + whisper
    assert by_key[None].cost_usd == EXAMPLE_COST


async def test_a_batch_naming_an_unknown_session_writes_nothing(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="k"))
    await open_session(store, "s1", key.id)
    with pytest.raises(UnknownSession, match="ghost"):
        await store.record_usage([response("s1", "r1"), response("ghost", "r1")])
    assert await store.usage() == []
    assert await store.spent_usd(key.id) == 0
    assert await store.record_usage([response("s1", "r1")]) == 1  # the store still writes


async def test_unpriced_usage_adds_no_spend(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="k"))
    await open_session(store, "s1", key.id, model="someone-elses-model")
    assert await write_usage(store, response("s1", "r1", model="someone-elses-model"))
    [row] = await store.usage(by="key")
    assert (row.group, row.responses, row.unpriced) == (key.id, 1, 1)
    assert await store.spent_usd(key.id) == 0


class CountingStore:
    """The real store, with a log of the usage batches the writer hands it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: list[int] = []

    async def record_usage(self, records: Sequence[UsageRecord]) -> int:
        self.batches.append(len(records))
        return await self.store.record_usage(records)

    async def record_refusals(self, items: Sequence[Refusal]) -> None:
        self.batches.append(len(items))
        await self.store.record_refusals(items)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


async def test_writer_commits_what_queued_up_together_and_keeps_order(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    key, _ = await store.create_key(KeySpec(name="k"))
    counting = CountingStore(store)
    writer = LedgerWriter(counting)  # type: ignore[arg-type]
    writer.start()
    try:
        # All queued before the writer runs: the session must land before its usage.
        writer.submit(
            SessionStart(
                session_id="s1",
                key_id=key.id,
                key_prefix=key.prefix,
                model="gpt-realtime",
                channel="c",
                started_at=T0,
            )
        )
        for i in range(40):
            writer.submit(response("s1", f"r{i}"))
        writer.submit(response("ghost", "r1"))  # dropped, and it costs the others nothing
        for i in range(40, 50):
            writer.submit(response("s1", f"r{i}"))
        writer.submit(SessionEnd(session_id="s1", ended_at=T0, status="completed", duration_s=1.0))
        with caplog.at_level(logging.WARNING, logger="rtrelay.ledger"):
            await writer.flush()
    finally:
        await writer.close()
    [row] = await store.usage(by="key")
    assert row.responses == 50
    assert await store.spent_usd(key.id) == 50 * EXAMPLE_COST
    session = await session_row(store, "s1")
    assert session is not None and session.status == "completed"
    assert max(counting.batches) > 1, counting.batches  # grouped, not one per response
    assert [r.levelname for r in caplog.records] == ["ERROR"]  # the ghost, once, no retries


@pytest.mark.postgres
async def test_usage_write_survives_a_dropped_connection(
    postgres_admin_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with postgres_database(postgres_admin_url) as url:
        store = await open_store(url)
        try:
            key, _ = await store.create_key(KeySpec(name="k"))
            await open_session(store, "s1", key.id)
            writer = LedgerWriter(store)
            writer.start()
            try:
                writer.submit(response("s1", "r1"))
                await writer.flush()
                assert isinstance(store, SqlStore)
                await _terminate_other_backends(store.engine)
                with caplog.at_level(logging.WARNING, logger="rtrelay.ledger"):
                    writer.submit(response("s1", "r2"))  # fails once; the retry reconnects
                    await writer.flush()
                assert [r.getMessage() for r in caplog.records] == ["ledger write failed; retrying"]
            finally:
                await writer.close()
            [row] = await store.usage(by="key")
            assert row.responses == 2
            assert await store.spent_usd(key.id) == 2 * EXAMPLE_COST
        finally:
            await store.close()


async def _terminate_other_backends(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        terminated = (
            await conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        ).scalar()
    assert terminated and terminated >= 1


async def test_a_ledger_from_revision_0001_keeps_its_spend_and_bills_new_usage(
    fresh_store_url: str,
) -> None:
    engine = create_engine(fresh_store_url)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO rtrelay_api_keys (id, prefix, name, spent_usd, created_at) "
                    "VALUES ('key_old', 'abcd1234', 'old', :spent, :at)"
                ),
                # Money on SQLite is a BIGINT of 1e-10 USD.
                {"spent": 10**10 if "sqlite" in fresh_store_url else 1, "at": T0},
            )
    finally:
        await engine.dispose()
    store = await open_store(fresh_store_url)
    try:
        await open_session(store, "s1", "key_old")
        assert await write_usage(store, response("s1", "r1"))
        assert await store.spent_usd("key_old") == 1 + EXAMPLE_COST
    finally:
        await store.close()


async def test_writer_batches_session_starts_and_a_duplicate_costs_the_others_nothing(
    store: Store,
) -> None:
    key, _ = await store.create_key(KeySpec(name="k"))
    counting = CountingStore(store)
    writer = LedgerWriter(counting)  # type: ignore[arg-type]
    writer.start()

    def start(session_id: str) -> SessionStart:
        return SessionStart(
            session_id=session_id,
            key_id=key.id,
            key_prefix=key.prefix,
            model="gpt-realtime",
            channel="c",
            started_at=T0,
        )

    try:
        for session_id in ("a", "b", "a", "c"):
            writer.submit(start(session_id))
        writer.submit(response("c", "r1"))
        await writer.flush()
        await counting.store.open_sessions([start("d"), start("e")])
        with pytest.raises(StoreError):
            await counting.store.open_sessions([start("f"), start("d")])
    finally:
        await writer.close()
    found = {s.session_id for s in await store.sessions()}
    assert found == {"a", "b", "c", "d", "e"}  # "f" went with its batch's duplicate
    [row] = await store.usage(by="key")
    assert row.responses == 1


async def test_sqlite_write_waits_for_a_held_lock_off_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        key, _ = await store.create_key(KeySpec(name="k"))
        await open_session(store, "s1", key.id)
        assert await write_usage(store, response("s1", "r0"))  # the loop's connection is up
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            write = asyncio.ensure_future(write_usage(store, response("s1", "r1")))
            ticks = 0
            for _ in range(20):  # the loop stays free while the write waits
                await asyncio.sleep(0.01)
                ticks += 1
            assert not write.done() and ticks == 20
        finally:
            other.execute("COMMIT")
            other.close()
        assert await asyncio.wait_for(write, 10)
        assert await store.spent_usd(key.id) == 2 * EXAMPLE_COST
    finally:
        await store.close()


async def test_sqlite_wal_is_checkpointed_by_the_hot_writes(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    wal = path.with_name("wal.db-wal")
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        await open_session(store, "s1", None)
        for i in range(3 * CHECKPOINT_EVERY):
            if i == CHECKPOINT_EVERY - 2:
                one_interval = wal.stat().st_size  # just before the first checkpoint
            await write_usage(store, response("s1", f"r{i}"))
        # Each checkpoint lets the WAL be reused from its start: it stays about one
        # interval long instead of growing by one interval every interval.
        assert wal.stat().st_size < 1.5 * one_interval
        [row] = await store.usage()
        assert row.responses == 3 * CHECKPOINT_EVERY
    finally:
        await store.close()


async def test_a_flood_of_refused_handshakes_is_written_in_batches(store: Store) -> None:
    counting = CountingStore(store)
    writer = LedgerWriter(counting)  # type: ignore[arg-type]
    writer.start()
    try:
        for i in range(60):
            writer.submit(
                Refusal(
                    request_id=f"req_{i}",
                    error_code="invalid_api_key",
                    http_status=401,
                    at=T0,
                    model="gpt-realtime",
                )
            )
        await writer.flush()
    finally:
        await writer.close()
    rows = await store.refusals(limit=100)
    assert sorted(r.request_id for r in rows) == sorted(f"req_{i}" for i in range(60))
    assert all((r.error_code, r.http_status) == ("invalid_api_key", 401) for r in rows)
    assert max(counting.batches) > 1, counting.batches
