"""The ``Store`` seam: keys, the ledger and its reports, behind one small protocol.

``open_store(url)`` picks the database from the URL (SQLite file or PostgreSQL),
brings the schema up to date and returns the store. Callers depend on ``Store``
only; ``SqlStore`` is the one implementation.
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
from rtrelay.ledger.sqlstore import SqlStore

__all__ = ["Store", "open_store", "resolve_key"]


class Store(Protocol):
    """Everything rtrelay keeps in its database.

    Keys are never stored in clear (see ``rtrelay.ledger.keys``); every write is
    one transaction; ``record_*`` are idempotent on their natural keys.
    """

    async def close(self) -> None:
        """Release the connection pool."""

    async def ping(self) -> None:
        """Raise if the database cannot answer (for ``/readyz``)."""

    # keys
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

    async def rotate_key(self, key_id: str) -> tuple[KeyRecord, str]:
        """A new secret for the same key (id, limits, spend); the old secret stops working.

        Raises ``KeyNotFound``, or ``KeyRevoked`` for a revoked key.
        """

    async def spent_usd(self, key_id: str) -> Decimal:
        """Sum of priced ledger cost for the key; O(1)."""

    # ledger
    async def open_session(self, start: SessionStart) -> None:
        """Raises ``StoreError`` for a duplicate session id or an unknown key."""

    async def open_sessions(self, starts: Sequence[SessionStart]) -> None:
        """As ``open_session`` for several at once, atomically (the writer's batches)."""

    async def record_response(self, record: ResponseRecord) -> bool:
        """Write one response's usage; ``False`` if (session, response id) was already written.

        Raises ``UnknownSession`` if the session was never opened.
        """

    async def record_transcription(self, record: TranscriptionRecord) -> bool:
        """As ``record_response``, keyed by (session, item id)."""

    async def record_usage(self, records: Sequence[UsageRecord]) -> int:
        """Write responses and transcriptions atomically; returns how many were new.

        One statement whatever the count, which is what lets the ledger writer
        commit everything queued at once. Raises ``UnknownSession`` (and writes
        nothing) if any record names a session never opened.
        """

    async def close_session(self, end: SessionEnd) -> bool:
        """Settle a live (or interrupted) session; ``False`` if it was already closed."""

    async def record_refusal(self, refusal: Refusal) -> None: ...

    async def record_refusals(self, items: Sequence[Refusal]) -> None:
        """As ``record_refusal`` for several at once: a flood of bad handshakes batches.

        Idempotent on the request id (a replayed journal writes each refusal once).
        """

    async def record_refusal_counts(self, counts: Sequence[RefusalCount]) -> None:
        """Add each count to its (minute, code, key prefix) counter row; one per key."""

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

    # reports
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

    async def get_session(self, session_id: str) -> SessionRow | None: ...

    async def refusals(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Refusal]:
        """Newest first."""

    async def refusal_totals(
        self, *, key_id: str | None = None, since: datetime | None = None
    ) -> dict[str, int]:
        """Refused handshakes per error code: rows and counters together.

        Counters are kept per minute, so ``since`` is rounded down to its minute for them.
        """


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


async def resolve_key(store: Store, ref: str) -> KeyRecord | None:
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
