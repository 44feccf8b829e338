"""pytest plugin: the ``store`` fixture, once on SQLite and once on PostgreSQL.

Use it with ``pytest_plugins = ["store_fixtures"]`` in the top conftest (``tests/``
on ``sys.path``), or import the fixtures into a directory's conftest.

PostgreSQL is ``postgresql://postgres@127.0.0.1:5432/`` (override with
``RTRELAY_TEST_POSTGRES_URL``). Each test session creates one throw-away database
``rtrelay_t_<random>``, migrates it, empties it before every test and drops it at
the end. If PostgreSQL is unreachable the postgres-parametrized tests *fail*
with a message saying so; set ``RTRELAY_TEST_POSTGRES=0`` to skip them instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import asyncpg
import pytest

from rtrelay.ledger import Store, open_store
from rtrelay.ledger.keys import KeyRecord, KeySpec
from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.ledger.records import ResponseRecord, SessionStart
from rtrelay.ledger.schema import metadata

__all__ = [
    "STORE_BACKENDS",
    "fresh_store_url",
    "postgres_admin_url",
    "postgres_database",
    "postgres_session_url",
    "run_in_thread",
    "store",
    "store_url",
]

T = TypeVar("T")

PG_ADMIN_URL: Final = os.environ.get(
    "RTRELAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STORE_BACKENDS: Final = (
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
)


def run_in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on its own loop in its own thread.

    For sync fixtures and sync tests: it never touches the event loop that
    pytest-asyncio runs the tests on.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="store-fixture")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _sqlalchemy_url(asyncpg_url: str) -> str:
    return asyncpg_url.replace("postgresql://", "postgresql+asyncpg://", 1)


def _database_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The maintenance URL of a reachable PostgreSQL, or a clear failure (or skip)."""
    if os.environ.get("RTRELAY_TEST_POSTGRES", "1") == "0":
        pytest.skip("PostgreSQL tests turned off (RTRELAY_TEST_POSTGRES=0)")

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        await conn.close()

    try:
        run_in_thread(probe)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    else:
        return PG_ADMIN_URL
    pytest.fail(
        f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({problem}). "
        "Start it (.ci/run does), point RTRELAY_TEST_POSTGRES_URL at one, "
        "or set RTRELAY_TEST_POSTGRES=0 to skip the PostgreSQL half of the store tests.",
        pytrace=False,
    )


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new empty database ``rtrelay_t_<random>``; yields its SQLAlchemy URL, then drops it."""
    name = f"rtrelay_t_{secrets.token_hex(6)}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_in_thread(lambda: execute(f'CREATE DATABASE "{name}"'))
    try:
        yield _sqlalchemy_url(_database_url(admin_url, name))
    finally:
        run_in_thread(lambda: execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_session_url(postgres_admin_url: str) -> Iterator[str]:
    """One migrated database for the whole session (``store_url`` empties it per test)."""
    with postgres_database(postgres_admin_url) as url:

        async def migrate() -> None:
            store = await open_store(url)
            await store.close()

        run_in_thread(migrate)
        yield url


def _empty(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in reversed(metadata.sorted_tables))

    async def truncate() -> None:
        conn = await asyncpg.connect(url.replace("+asyncpg", "", 1), timeout=10)
        try:
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    run_in_thread(truncate)


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty store: a fresh SQLite file, or the session's PostgreSQL emptied."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_session_url")
    _empty(url)
    return url


@pytest.fixture(params=STORE_BACKENDS)
def fresh_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database never migrated: for tests of the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_database(request.getfixturevalue("postgres_admin_url")) as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An open ``Store`` on each backend, closed after the test."""
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()


USAGE_T0: Final = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
EXAMPLE_USAGE: Final = Usage(
    input_text=119, input_audio=13, cached_text=64, output_text=30, output_audio=91
)
"""protocol.md §4's example response: 253 tokens, 64 of them cached text."""


async def seed_usage(store: Store) -> tuple[KeyRecord, KeyRecord]:
    """Keys alpha and beta; three sessions over two UTC days, one priced response each."""
    a, _ = await store.create_key(KeySpec(name="alpha"))
    b, _ = await store.create_key(KeySpec(name="beta"))
    plan = [
        ("s1", a, "gpt-realtime", USAGE_T0),
        ("s2", a, "gpt-realtime-mini", USAGE_T0 + timedelta(hours=2)),
        ("s3", b, "gpt-realtime", USAGE_T0 + timedelta(hours=3)),
    ]
    for session_id, key, model, at in plan:
        await store.open_sessions(
            [
                SessionStart(
                    session_id=session_id,
                    key_id=key.id,
                    key_prefix=key.prefix,
                    model=model,
                    channel="primary",
                    started_at=at,
                )
            ]
        )
        await store.record_usage(
            [
                ResponseRecord.priced_by(
                    PriceTable(),
                    session_id=session_id,
                    response_id="resp_1",
                    model=model,
                    status="completed",
                    usage=EXAMPLE_USAGE,
                    at=at,
                )
            ]
        )
    return a, b
