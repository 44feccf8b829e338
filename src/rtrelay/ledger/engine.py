"""One async engine per store URL, with the SQLite settings a relay needs.

SQLite: WAL (readers never block the writer), a busy timeout (writers queue
instead of failing), foreign keys on, and SQLAlchemy emitting ``BEGIN`` itself:
Python's sqlite3 on 3.11 would otherwise run DDL and SELECTs outside any
transaction (SQLAlchemy docs, "Transactions with SQLite and the sqlite3 driver").
Write transactions start with ``BEGIN IMMEDIATE`` so a read-then-write never
fails on a snapshot another writer moved.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from rtrelay.ledger.exceptions import StoreUnavailable

__all__ = [
    "BUSY_TIMEOUT_S",
    "WRITE",
    "begin_write",
    "create_engine",
    "create_sync_sqlite_engine",
    "describe_url",
]

BUSY_TIMEOUT_S: Final = 15.0
WRITE: Final = "rtrelay_write"
"""Execution option marking a connection whose transaction will write."""

_DRIVERS: Final = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def describe_url(url: str | URL) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid store URL>"


def create_engine(url: str) -> AsyncEngine:
    """An ``AsyncEngine`` for ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://…``.

    Raises:
        StoreUnavailable: the URL is malformed or names another driver.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(
            "invalid store URL (expected sqlite+aiosqlite:///path or postgresql+asyncpg://...)"
        ) from exc
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS or parsed.drivername not in (backend, _DRIVERS[backend]):
        raise StoreUnavailable(
            f"unsupported store URL {describe_url(parsed)}: use sqlite+aiosqlite:///path "
            "or postgresql+asyncpg://user@host/db"
        )
    parsed = parsed.set(drivername=_DRIVERS[backend])
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise StoreUnavailable("the SQLite store needs a file path: sqlite+aiosqlite:///path")
        engine = create_async_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})
        _configure_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(parsed, pool_pre_ping=True)


def begin_write(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite, a plain one elsewhere.

    For the writes that read first (keys, pruning, start-up); the frequent ledger
    writes are single statements on ``ledger.hotpath``'s connection instead.
    """
    return engine.execution_options(**{WRITE: True}).begin()


def create_sync_sqlite_engine(url: URL, *, wait: bool = True) -> Engine:
    """A blocking engine on the same SQLite file, set up alike (for ``ledger.hotpath``).

    Args:
        wait: ``False`` for a connection used on the event loop: it never waits for
            another writer's lock (``SQLITE_BUSY`` at once) and never checkpoints
            the WAL itself (a checkpoint fsyncs; the other connections do it).
    """
    busy_timeout_s = BUSY_TIMEOUT_S if wait else 0.0
    engine = sa_create_engine(
        url.set(drivername="sqlite"), connect_args={"timeout": busy_timeout_s}
    )
    _configure_sqlite(engine, busy_timeout_s=busy_timeout_s, autocheckpoint=wait)
    return engine


def _configure_sqlite(
    engine: Engine, *, busy_timeout_s: float = BUSY_TIMEOUT_S, autocheckpoint: bool = True
) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            if not autocheckpoint:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")  # in WAL: durable across app crashes
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # each statement is its own transaction; COMMIT would be a no-op
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE, False) else "BEGIN")
