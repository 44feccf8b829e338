"""``SqlStore``: the one ``Store``, in SQLAlchemy Core, for SQLite and PostgreSQL alike.

It is the three jobs of ``store.py`` over one engine, each in its own module:
``SqlKeys`` (keys, ``sqlkeys``), ``SqlLedger`` (ledger writes, ``sqlledger``) and
``SqlReports`` (reports, ``sqlreports``), plus ``SqlCalls`` (the WebRTC call registry,
``sqlcalls``). They share nothing but the engine, so each
can be read, tested and replaced alone; this class only joins them, so the relay,
the admin API and the CLI hold one object and one connection pool. Why one facade
and not three objects passed around: every consumer already names the one job it
needs by type (``KeyStore``, ``LedgerStore``, ``ReportStore``), and a single object
is what ``open_store`` migrates, connects and closes as one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from rtrelay.ledger.sqlcalls import SqlCalls
from rtrelay.ledger.sqlkeys import SqlKeys, utcnow
from rtrelay.ledger.sqlledger import SqlLedger
from rtrelay.ledger.sqlreports import SqlReports

__all__ = ["SqlStore"]


class SqlStore(SqlKeys, SqlLedger, SqlReports, SqlCalls):
    """Keys, ledger writes and reports over one ``AsyncEngine`` (see ``open_store``).

    The three bases keep their state under distinct names and share only
    ``_engine``, which each is given the same.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        SqlKeys.__init__(self, engine, clock=clock)
        SqlLedger.__init__(self, engine)
        SqlReports.__init__(self, engine)
        SqlCalls.__init__(self, engine, clock=clock)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        """Close the ledger's hot connection, then the pool."""
        await SqlLedger.close(self)
        await self._engine.dispose()
