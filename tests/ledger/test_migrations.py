"""Migrations on a never-migrated database, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from rtrelay.ledger import StoreUnavailable, open_store
from rtrelay.ledger.engine import create_engine
from rtrelay.ledger.migrate import VERSION_TABLE, current_revision, head_revision, upgrade
from rtrelay.ledger.schema import UTCDateTime, metadata

T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
    )
    return list(compare_metadata(context, metadata))


async def test_open_store_migrates_to_head_and_matches_the_schema_module(
    fresh_store_url: str,
) -> None:
    engine = create_engine(fresh_store_url)
    try:
        assert await current_revision(engine) is None
        store = await open_store(fresh_store_url)
        await store.close()
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_sessions_of_revision_0003_keep_everything_but_the_client_kind_never_set(
    fresh_store_url: str,
) -> None:
    engine = create_engine(fresh_store_url)
    old_sessions = sa.table(
        "rtrelay_sessions",
        *(sa.column(name) for name in ("id", "model", "channel", "status", "shape", "node")),
        sa.column("client_kind"),
        sa.column("started_at", UTCDateTime()),
    )
    try:
        await upgrade(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(
                old_sessions.insert().values(
                    id="s_old",
                    model="gpt-realtime",
                    channel="c",
                    status="completed",
                    shape="ga",
                    node="n1",
                    client_kind=None,
                    started_at=T0,
                )
            )
    finally:
        await engine.dispose()
    store = await open_store(fresh_store_url)
    try:
        [row] = await store.sessions()
        assert (row.session_id, row.status, row.node, row.started_at) == (
            "s_old",
            "completed",
            "n1",
            T0,
        )
    finally:
        await store.close()


async def test_relays_starting_together_migrate_once(fresh_store_url: str) -> None:
    stores = await asyncio.gather(*(open_store(fresh_store_url) for _ in range(3)))
    try:
        for store in stores:
            await store.ping()
    finally:
        for store in stores:
            await store.close()
    engine = create_engine(fresh_store_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_a_schema_newer_than_the_code_is_refused_clearly(fresh_store_url: str) -> None:
    store = await open_store(fresh_store_url)
    await store.close()
    engine = create_engine(fresh_store_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    finally:
        await engine.dispose()
    with pytest.raises(StoreUnavailable, match="newer rtrelay"):
        await open_store(fresh_store_url)


async def test_sqlite_store_runs_in_wal_mode(tmp_path: Any) -> None:
    path = tmp_path / "wal.db"
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_plain_urls_get_the_async_drivers(tmp_path: Any) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'plain.db'}")
    await store.ping()
    await store.close()


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "sqlite+aiosqlite://", "sqlite+pysqlite:///x.db", "not a url"]
)
async def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreUnavailable):
        await open_store(url)


async def test_unreachable_postgres_is_refused_without_leaking_the_password() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        await open_store("postgresql+asyncpg://u:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
