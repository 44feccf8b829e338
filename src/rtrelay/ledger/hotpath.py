"""The connection the ledger's frequent writes go through: session rows (opened and
closed), usage rows and refused handshakes.

It is a connection, not a writer: ``LedgerWriter`` is the one writer (it decides
what is written when), ``SqlLedger`` turns records into statements, and this module
only runs them as cheaply as each database allows.

Each write is one statement (a batch is one multi-row ``INSERT``) on a connection kept
for nothing else, in autocommit: atomic without ``BEGIN``/``COMMIT``, no pool
checkout, no reset on return. A connection that failed or was cancelled mid-statement
is dropped and the next write opens a new one; a constraint violation or a busy
database keeps it (the data or the moment was wrong, not the connection).

PostgreSQL runs the statement over asyncpg: one round trip.

SQLite runs it synchronously, right on the event loop. In WAL mode with
``synchronous=NORMAL`` a commit appends to the WAL without an fsync: a usage row
takes about 0.1 ms, less than relaying one audio frame. Every other way measured
cost more CPU than the insert itself: aiosqlite hops to its thread and back for
each DBAPI call (0.57 ms per write), a dedicated thread once per write (0.30 ms in
isolation, about 0.7 ms under relay load, where the hop contends for the GIL). The
loop's connection never waits: it does not checkpoint (a checkpoint fsyncs: the
thread runs one every ``CHECKPOINT_EVERY`` writes) and has no busy timeout, so when
another writer holds the lock (``SQLITE_BUSY``) the write goes to that thread, which
waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rtrelay.ledger.engine import create_sync_sqlite_engine
from rtrelay.log import ledger_log

__all__ = ["CHECKPOINT_EVERY", "HotConnection", "open_hot_connection"]

Rows = list[dict[str, Any]]

CHECKPOINT_EVERY: Final = 200
"""Hot writes between two WAL checkpoints (a usage row adds about 4 pages, 18 KB, to the WAL)."""


class HotConnection(Protocol):
    """Runs the ledger's frequent statements (``SqlLedger`` builds them, once)."""

    async def connect(self) -> None:
        """Open the connections now, so start-up fails loudly and the first write is fast."""

    async def execute(self, statement: sa.Executable, rows: Rows) -> list[Any]:
        """Run ``statement`` once for all ``rows``; the rows it returned."""

    async def close(self) -> None: ...


def open_hot_connection(engine: AsyncEngine) -> HotConnection:
    """The hot connection for ``engine``'s database (not opened until ``connect``)."""
    if engine.dialect.name == "sqlite":
        return _SQLiteHotConnection(engine.url)
    return _AsyncHotConnection(engine)


class _AsyncHotConnection:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        async with self._lock:
            await self._connection()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def execute(self, statement: sa.Executable, rows: Rows) -> list[Any]:
        async with self._lock:
            conn = await self._connection()
            try:
                result = await conn.execute(statement, rows)
                return list(result.all()) if result.returns_rows else []
            except IntegrityError:
                raise
            except BaseException:
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.invalidate()
                    await conn.close()
                raise

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


class _SyncConnection:
    """One autocommit connection of a blocking engine, opened on first use."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect()
            self._conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def execute(self, statement: sa.Executable, rows: Rows) -> list[Any]:
        conn = self.connection()
        try:
            result = conn.execute(statement, rows)
            return list(result.all()) if result.returns_rows else []
        except IntegrityError:
            raise
        except OperationalError as exc:
            if not _is_busy(exc):
                self._drop(conn)
            raise
        except BaseException:
            self._drop(conn)
            raise

    def checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE: never waits for readers or writers)."""
        self.execute(sa.text("PRAGMA wal_checkpoint(PASSIVE)"), [{}])

    def _drop(self, conn: Connection) -> None:
        self._conn = None
        with contextlib.suppress(Exception):
            conn.invalidate()
            conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


class _SQLiteHotConnection:
    def __init__(self, url: URL) -> None:
        self._here = _SyncConnection(create_sync_sqlite_engine(url, wait=False))
        self._waiting = _SyncConnection(create_sync_sqlite_engine(url))
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="rtrelay-ledger")
        self._writes = 0

    async def connect(self) -> None:
        self._here.connection()
        await asyncio.get_running_loop().run_in_executor(self._thread, self._waiting.connection)

    async def execute(self, statement: sa.Executable, rows: Rows) -> list[Any]:
        loop = asyncio.get_running_loop()
        self._writes += 1
        if self._writes % CHECKPOINT_EVERY == 0:
            try:
                await loop.run_in_executor(self._thread, self._waiting.checkpoint)
            except OperationalError:
                ledger_log.warning("WAL checkpoint failed; the next one will retry", exc_info=True)
        try:
            return self._here.execute(statement, rows)
        except OperationalError as exc:
            if not _is_busy(exc):
                raise
        return await loop.run_in_executor(self._thread, self._waiting.execute, statement, rows)

    async def close(self) -> None:
        self._here.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._waiting.close)
        self._thread.shutdown(wait=True)


def _is_busy(exc: OperationalError) -> bool:
    """SQLite's ``SQLITE_BUSY``: another connection holds the write lock."""
    return getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
