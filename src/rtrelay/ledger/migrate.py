"""Schema migrations: Alembic, driven from code, with the scripts inside the package.

No ``alembic.ini`` is needed at run time. ``upgrade()`` runs under a lock
(PostgreSQL advisory lock; SQLite ``BEGIN IMMEDIATE``) so several relays starting
at once migrate exactly once, and inside one transaction, so a failed migration
leaves the previous schema intact.
"""

from __future__ import annotations

import asyncio
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rtrelay.ledger.engine import begin_write, describe_url
from rtrelay.ledger.exceptions import StoreUnavailable

__all__ = ["SCRIPT_LOCATION", "VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

SCRIPT_LOCATION: Final = "rtrelay.ledger:migrations"
VERSION_TABLE: Final = "rtrelay_alembic_version"
_PG_LOCK_ID: Final = 0x72_74_72_6C_79  # "rtrly": any constant shared by all relays
_SQLITE_LOCKED_RETRY_S: Final = 30.0


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    """The newest revision this code ships."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, ``None`` for an empty database."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> str:
    """Migrate the database to ``revision`` and return the revision it is at.

    Several relays may start at once on one fresh SQLite file (``serve --workers N``).
    Turning on WAL needs an exclusive lock and SQLite answers "database is locked" at
    once, without waiting, when waiting could deadlock; so a locked SQLite migration is
    simply tried again for a while. PostgreSQL serialises on an advisory lock instead.

    Raises:
        StoreUnavailable: the database is unreachable, or at a revision this code
            does not know (a newer rtrelay migrated it).
    """
    delay = 0.05
    deadline = asyncio.get_running_loop().time() + _SQLITE_LOCKED_RETRY_S
    while True:
        try:
            return await _upgrade_once(engine, revision)
        except OperationalError as exc:
            locked = engine.dialect.name == "sqlite" and "locked" in str(exc)
            if not locked or asyncio.get_running_loop().time() + delay > deadline:
                raise StoreUnavailable(
                    f"cannot open store {describe_url(engine.url)}: {exc}"
                ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def _upgrade_once(engine: AsyncEngine, revision: str) -> str:
    try:
        async with begin_write(engine) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
            return await conn.run_sync(_upgrade, revision)
    except CommandError as exc:
        raise StoreUnavailable(
            f"cannot migrate {describe_url(engine.url)}: {exc} "
            "(was it migrated by a newer rtrelay?)"
        ) from exc
    except OperationalError:
        raise  # the caller decides whether a locked SQLite file is worth another try
    except (SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(f"cannot open store {describe_url(engine.url)}: {exc}") from exc


def _upgrade(conn: Connection, revision: str) -> str:
    config = _config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)
    current = _current(conn)
    assert current is not None
    return current
