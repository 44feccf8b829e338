"""The store's seams: keys, ledger writes and reports, each a small protocol.

Stores are where rtrelay varies (SQLite or PostgreSQL today; DESIGN.md "interfaces
at the seams"), and their consumers each need one job: the gate and ``SpendBook``
read keys, ``LedgerWriter`` writes records, the CLI and the admin API read reports.
So each job is its own protocol (``KeyStore``, ``LedgerStore``, ``ReportStore``) and
code depends on the one it uses; ``Store`` is all three, what ``open_store``
returns. ``SqlStore`` (``sqlstore``) is the one implementation, a job per module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from rtrelay.ledger.engine import create_engine, describe_url
from rtrelay.ledger.exceptions import StoreUnavailable
from rtrelay.ledger.keys import KEY_ID_PREFIX, PREFIX_LENGTH, SECRET_PREFIX, KeyRecord, KeySpec
from rtrelay.ledger.migrate import upgrade
from rtrelay.ledger.records import (
    CallRecord,
    Grouping,
    Refusal,
    RefusalCount,
    SessionEnd,
    SessionRow,
    SessionStart,
    UsageRecord,
    UsageRow,
)
from rtrelay.ledger.sqlstore import SqlStore

__all__ = [
    "CallStore",
    "KeyStore",
    "LedgerStore",
    "ReportStore",
    "Store",
    "open_store",
    "resolve_key",
]


class KeyStore(Protocol):
    """API keys: what the gate, ``SpendBook``, the admin API and ``rtrelay keys`` use.

    Keys are never stored in clear (see ``rtrelay.ledger.keys``).
    """

    async def create_key(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        """Create a key; the secret is returned here and never again."""

    async def find_key(self, secret: str) -> KeyRecord | None:
        """The key ``secret`` belongs to, or ``None`` for an unknown secret.

        Revoked and expired keys (and secrets retired by rotation, which read as
        revoked) are returned too: check ``KeyRecord.inactive_reason(now)``.
        """

    async def get_key(self, key_id: str) -> KeyRecord | None: ...

    async def get_key_by_prefix(self, prefix: str) -> KeyRecord | None:
        """The key any of whose secrets (current or retired) had ``prefix``."""

    async def list_keys(self) -> list[KeyRecord]: ...

    async def revoke_key(self, key_id: str) -> KeyRecord:
        """Revoke at once (idempotent). Raises ``KeyNotFound``."""

    async def update_key(self, key_id: str, spec: KeySpec) -> KeyRecord:
        """Give a key new settings (name, models, origins, limits, budget, expiry); its id,
        secret, spend and status stay. Raises ``KeyNotFound``."""

    async def rotate_key(self, key_id: str) -> tuple[KeyRecord, str]:
        """A new secret for the same key (id, limits, spend); the old secret stops working.

        Raises ``KeyNotFound``, or ``KeyRevoked`` for a revoked key.
        """

    async def spent_usd(self, key_id: str) -> Decimal:
        """Sum of priced ledger cost for the key; O(1)."""


class LedgerStore(Protocol):
    """The ledger's writes: what ``LedgerWriter`` (and start-up) needs, nothing else.

    One method per record kind, each taking every record of a batch at once (one
    statement; ``close_session`` excepted). All are idempotent on the record's
    natural key, so a journal replayed twice writes nothing twice. ``StoreError``
    subclasses other than ``StoreUnavailable`` mean the records are wrong and a retry
    cannot help; anything else may be the database going away.
    """

    async def ping(self) -> None:
        """Raise if the database cannot answer (``/readyz``; the writer's replay)."""

    async def open_sessions(self, starts: Sequence[SessionStart]) -> None:
        """Open sessions, atomically.

        Raises:
            SessionExists: one of them is open already (nothing written).
            StoreError: a duplicate id within ``starts``, or an unknown key.
        """

    async def record_usage(self, records: Sequence[UsageRecord]) -> int:
        """Write responses and transcriptions atomically; how many were new.

        A response is written once per (session, response id), a transcription once
        per (session, item id): a repeat counts for nothing and bills nothing.

        Raises:
            UnknownSession: a record names a session never opened (nothing written).
        """

    async def close_session(self, end: SessionEnd) -> bool:
        """Settle a live (or interrupted) session; ``False`` if it was already closed.

        Raises:
            UnknownSession: the session was never opened.
        """

    async def record_refusals(self, items: Sequence[Refusal]) -> None:
        """Write refused handshakes, once per request id."""

    async def record_refusal_counts(self, counts: Sequence[RefusalCount]) -> None:
        """Add each count to its (minute, code, key prefix) counter row."""

    async def prune(self, before: datetime, *, limit: int = 1000) -> dict[str, int]:
        """Delete up to ``limit`` rows of each kind from before ``before``; how many, by kind.

        Kinds: ``refusals``, ``refusal_counts`` and ``sessions`` without usage.
        Usage rows are money and are never pruned, nor are their sessions.
        """

    async def mark_interrupted(self, *, node: str | None = None) -> int:
        """At start-up: sessions never closed become ``interrupted``; returns how many.

        With several relays on one database, pass ``node`` so a starting relay
        only settles its own sessions.
        """


class ReportStore(Protocol):
    """What operators read back: ``rtrelay usage``, the admin API and the console."""

    async def usage(
        self,
        *,
        key_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        by: Grouping = "key",
    ) -> list[UsageRow]:
        """Usage summed per key, model or UTC day; ``since`` inclusive, ``until`` exclusive."""

    async def sessions(
        self,
        *,
        key_id: str | None = None,
        since: datetime | None = None,
        live_only: bool = False,
        limit: int = 100,
    ) -> list[SessionRow]:
        """Newest first."""

    async def session(self, session_id: str) -> SessionRow | None:
        """One session with its usage summed (the console's session page)."""

    async def session_usage(self, session_id: str) -> list[UsageRecord]:
        """A session's responses and transcriptions, oldest first (its timeline)."""

    async def refusals(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Refusal]:
        """Refused handshakes kept row by row, newest first (floods are counted instead)."""


class CallStore(Protocol):
    """The WebRTC call registry: relay call id → provider call, owner and node."""

    async def register_call(self, call: CallRecord) -> None: ...

    async def find_call(self, call_id: str) -> CallRecord | None: ...

    async def end_call(self, call_id: str) -> bool:
        """Mark a live call ended; ``False`` if it was not live."""

    async def live_calls(self, *, node: str) -> list[CallRecord]:
        """Calls ``node`` created that were never marked ended (for its restart)."""


class Store(KeyStore, LedgerStore, ReportStore, CallStore, Protocol):
    """Everything rtrelay keeps in its database: the three jobs, opened and closed as one."""

    async def close(self) -> None:
        """Release the connections."""


async def open_store(
    url: str, *, migrate: bool = True, clock: Callable[[], datetime] | None = None
) -> Store:
    """Open the store at ``url`` and, unless ``migrate=False``, migrate it to the newest schema.

    Args:
        url: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://user@host/db``
            (``sqlite:///`` and ``postgresql://`` are accepted and get those drivers).
        clock: returns the aware UTC time stamped on keys (tests pass a fixed one).

    Raises:
        StoreUnavailable: bad URL, unreachable database, or a schema newer than this code.
    """
    engine = create_engine(url)
    try:
        if migrate:
            await upgrade(engine)
        else:
            async with engine.connect():
                pass
    except StoreUnavailable:
        await engine.dispose()
        raise
    except (SQLAlchemyError, OSError) as exc:
        await engine.dispose()
        raise StoreUnavailable(f"cannot open store {describe_url(url)}: {exc}") from exc
    store = SqlStore(engine) if clock is None else SqlStore(engine, clock=clock)
    try:
        await store.connect()
    except (SQLAlchemyError, OSError) as exc:
        await store.close()
        raise StoreUnavailable(f"cannot open store {describe_url(url)}: {exc}") from exc
    return store


async def resolve_key(store: KeyStore, ref: str) -> KeyRecord | None:
    """The key ``ref`` names: an id (``key_…``), a prefix (``abcd1234``), or ``rk_<prefix>``.

    What operators paste: the id from a listing, the prefix from a log line, or
    the start of the secret itself (only its prefix is used).
    """
    ref = ref.strip()
    if ref.startswith(KEY_ID_PREFIX):
        return await store.get_key(ref)
    if ref.startswith(SECRET_PREFIX):
        ref = ref[len(SECRET_PREFIX) :][:PREFIX_LENGTH]
    if len(ref) != PREFIX_LENGTH:
        return None
    return await store.get_key_by_prefix(ref)
