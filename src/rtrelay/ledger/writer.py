"""Getting usage into the store without ever making the bridge wait for a database.

``LedgerWriter`` owns one task per process that drains a queue of records into
the store; a record is written as its response completes, so a crash loses at
most what is in the queue at that instant. It never waits to fill a batch, but
whatever queued up while the last write ran goes out together: consecutive usage
records in one statement (group commit without a linger), so a busy relay pays
one round trip for many responses. Writes are idempotent, so a retry after a
transient database error can never double-bill.
``SpendBook`` keeps each key's spend in memory (loaded once from the store,
refreshed now and then for spend by other relays, bumped as responses are
metered) so budget checks on the hot path are a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from rtrelay.cache import LoadingCache
from rtrelay.ledger.exceptions import StoreError, StoreUnavailable
from rtrelay.ledger.records import (
    Refusal,
    ResponseRecord,
    SessionEnd,
    SessionStart,
    TranscriptionRecord,
)
from rtrelay.ledger.store import Store
from rtrelay.log import ledger_log

__all__ = ["LedgerWriter", "Record", "SpendBook"]

Record = SessionStart | SessionEnd | ResponseRecord | TranscriptionRecord | Refusal

RETRY_DELAYS: Final = (0.1, 0.5, 2.0, 5.0)
MAX_BATCH: Final = 256
"""Records taken off the queue per round (bounds one statement's parameters)."""


class LedgerWriter:
    """Args: enabled: ``False`` drops every record (``store.ledger = false``)."""

    def __init__(self, store: Store, *, enabled: bool = True) -> None:
        self._store = store
        self._enabled = enabled
        self._queue: asyncio.Queue[Record] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rtrelay.ledger-writer")

    def submit(self, record: Record) -> None:
        """Queue a record; never blocks (records are per response, not per frame)."""
        if self._enabled:
            self._queue.put_nowait(record)

    async def flush(self) -> None:
        await self._queue.join()

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._write_batch(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _write_batch(self, batch: list[Record]) -> None:
        """In queue order; each run of session starts, usage or refusals in one statement."""
        run: list[Record] = []
        for record in batch:
            if run and _run_kind(record) is not _run_kind(run[0]):
                await self._write_run(run)
                run = []
            run.append(record)
        await self._write_run(run)

    async def _write_run(self, run: list[Record]) -> None:
        if len(run) > 1 and _run_kind(run[0]) is not None:
            try:
                await self._apply(run)
                return
            except Exception:
                # One bad record must not cost the others: write each on its own.
                ledger_log.debug("batched write failed; writing one by one", exc_info=True)
        for record in run:
            await self._write(record)

    async def _write(self, record: Record) -> None:
        for delay in (*RETRY_DELAYS, None):
            try:
                await self._apply([record])
                return
            except Exception as exc:
                if delay is None or _is_permanent(exc):
                    ledger_log.error(
                        "ledger write failed for good",
                        extra={"record": type(record).__name__},
                        exc_info=True,
                    )
                    return
                ledger_log.warning(
                    "ledger write failed; retrying",
                    extra={"record": type(record).__name__, "retry_in_s": delay},
                    exc_info=True,
                )
                await asyncio.sleep(delay)

    async def _apply(self, records: list[Record]) -> None:
        """Write records of one kind (see ``_run_kind``): one, or a batch in one statement."""
        store, first = self._store, records[0]
        if isinstance(first, SessionStart):
            await store.open_sessions([r for r in records if isinstance(r, SessionStart)])
        elif isinstance(first, Refusal):
            await store.record_refusals([r for r in records if isinstance(r, Refusal)])
        elif isinstance(first, SessionEnd):
            await store.close_session(first)  # never batched
        else:
            await store.record_usage(
                [r for r in records if isinstance(r, ResponseRecord | TranscriptionRecord)]
            )


def _is_permanent(exc: Exception) -> bool:
    """The record itself is wrong (unknown session, duplicate id): retrying cannot help."""
    return isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailable)


def _run_kind(record: Record) -> type | None:
    """Records that batch together share a kind; ``None`` never batches."""
    if isinstance(record, SessionStart):
        return SessionStart
    if isinstance(record, ResponseRecord | TranscriptionRecord):
        return ResponseRecord
    if isinstance(record, Refusal):
        return Refusal
    return None


class SpendBook:
    """Per-key spend, in memory, consistent enough for budget checks."""

    def __init__(
        self,
        store: Store,
        *,
        refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._stored: LoadingCache[str, Decimal] = LoadingCache(refresh_seconds, clock=clock)
        self._spent: dict[str, Decimal] = {}

    async def spent(self, key_id: str) -> Decimal:
        """The key's spend, reloaded from the store when the cached value is stale.

        The store adds what other relays spent; never step back below what this
        process metered, which may not be written yet.
        """
        stored = await self._stored.get(key_id, lambda: self._store.spent_usd(key_id))
        spent = self._spent[key_id] = max(stored, self._spent.get(key_id, Decimal(0)))
        return spent

    def current(self, key_id: str) -> Decimal:
        """The cached spend (no I/O): what a ``response.create`` check uses."""
        return self._spent.get(key_id, Decimal(0))

    def add(self, key_id: str, cost: Decimal) -> None:
        self._spent[key_id] = self._spent.get(key_id, Decimal(0)) + cost
