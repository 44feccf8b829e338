"""Getting usage into the store without ever making the bridge wait for a database.

The write path, end to end: the bridge and the edge see one ``LedgerSink`` and call
``submit(record)``; ``LedgerWriter``, the one writer in a process and the sink's
implementation, queues the record and hands it, batched, to a ``LedgerStore``
(``SqlLedger``: record to statement), which runs it on the ledger's hot connection
(``ledger.hotpath``: statement to database, as cheaply as each database allows).
How a record kind is written, and whether it batches, is decided in one place:
``KINDS``. Only this class is a writer: ``hotpath`` holds a connection, and the
store's few multi-statement writes (keys, upkeep) are ``engine.begin_write``
transactions.

``LedgerWriter`` owns one task per process that drains a bounded queue of records
into the store; a record is written as its response completes. It never waits to
fill a batch, but whatever queued up while the last write ran goes out together:
consecutive records of a kind in one statement (group commit without a linger).

A completed response is never lost (issue 11, defect 10). A write that fails is
retried briefly (``RETRY_DELAYS``), then the records go to the local ``Journal``
(fsync'd) and so does everything after them, in order, until a replay has put the
journal into the store; the writer tries that every few seconds, and
``recover()`` does it at start-up for what an earlier run left. Writes are
idempotent, so a replay can never double-bill. What ``close`` cannot write goes
to the journal too; only with ``journal = "off"`` are records dropped, counted
and logged. If the queue fills (``QUEUE_LIMIT``), it is emptied into the journal
at once.

Refused handshakes are bounded (defect 4): past ``REFUSAL_ROWS_PER_MINUTE`` for one
(error code, key prefix) in a minute, further ones only add to a counter row per
minute (``RefusalCount``), written every ``COUNTS_FLUSH_S``. With a retention
set, the writer also prunes refusals, refusal counters and sessions without
usage older than that, in bounded batches; usage rows are money and stay.

``SpendBook`` keeps each key's spend in memory (loaded once from the store,
refreshed now and then for spend by other relays, bumped as responses are
metered) so budget checks on the hot path are a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from rtrelay.cache import LoadingCache
from rtrelay.ledger.exceptions import SessionExists, StoreError, StoreUnavailable, UnknownSession
from rtrelay.ledger.journal import Entry, Journal, encode
from rtrelay.ledger.records import (
    DurationRecord,
    Record,
    Refusal,
    RefusalCount,
    ResponseRecord,
    SessionEnd,
    SessionStart,
    TranscriptionRecord,
    minute_of,
)
from rtrelay.ledger.store import KeyStore, LedgerStore
from rtrelay.log import ledger_log
from rtrelay.tasks import cancel_and_wait

__all__ = [
    "KINDS",
    "QUEUE_LIMIT",
    "REFUSAL_ROWS_PER_MINUTE",
    "LedgerSink",
    "LedgerStats",
    "LedgerWriter",
    "Record",
    "RecordKind",
    "RefusalThrottle",
    "SpendBook",
]

RETRY_DELAYS: Final = (0.1, 0.5)
"""Seconds between tries of one batch before it goes to the journal."""
WRITE_TIMEOUT_S: Final = 20.0
"""One statement; longer than SQLite's busy timeout, so a wait for a lock is not an outage."""
PING_TIMEOUT_S: Final = 5.0
MAX_BATCH: Final = 256
"""Records taken off the queue per round (bounds one statement's parameters)."""
QUEUE_LIMIT: Final = 10_000
TICK_S: Final = 1.0
"""How often an idle writer looks at its timers (counters, replay, pruning)."""
REPLAY_BACKOFF: Final = (1.0, 2.0, 5.0)
REPLAY_CHUNKS_PER_TICK: Final = 20
"""Batches replayed before the writer turns back to its queue."""
REPLAY_TRIES: Final = 3
"""Replays a record naming a session not (yet) in the store gets before it is rejected."""
REFUSAL_ROWS_PER_MINUTE: Final = 60
"""Refusals of one (code, key prefix) per minute written row by row; the rest are counted."""
MAX_COUNT_GROUPS: Final = 10_000
COUNTS_FLUSH_S: Final = 5.0
CLOSE_TIMEOUT_S: Final = 10.0
PRUNE_EVERY_S: Final = 3600.0
PRUNE_FIRST_S: Final = 60.0
PRUNE_BATCH: Final = 1000


class LedgerSink(Protocol):
    """Where the relay puts ledger records: all the bridge and the edge know of the ledger."""

    def submit(self, record: Record) -> None:
        """Take ``record`` for writing; never blocks and never raises for a store failure."""


@dataclass(frozen=True, slots=True)
class RecordKind:
    """How the records of one kind reach a ``LedgerStore``.

    ``write`` takes a run of records of the kind (one, unless ``batches``) and makes
    one store call; records of kinds that batch and are the same ``RecordKind`` go
    out together when they queue up back to back.
    """

    write: Callable[[LedgerStore, list[Any]], Awaitable[object]]
    batches: bool = True


_USAGE: Final = RecordKind(lambda store, run: store.record_usage(run))

KINDS: Final[Mapping[type, RecordKind]] = {
    SessionStart: RecordKind(lambda store, run: store.open_sessions(run)),
    ResponseRecord: _USAGE,  # a response and a transcription are usage rows alike
    TranscriptionRecord: _USAGE,
    DurationRecord: _USAGE,
    SessionEnd: RecordKind(lambda store, run: store.close_session(run[0]), batches=False),
    Refusal: RecordKind(lambda store, run: store.record_refusals(run)),
}
"""The one dispatch on record type: every kind in ``records.Record`` has its row here."""


class _Outage(Exception):
    """The store did not take these records; they belong in the journal."""

    def __init__(self, unwritten: Sequence[Record]) -> None:
        super().__init__(f"{len(unwritten)} records unwritten")
        self.unwritten = list(unwritten)


@dataclass(slots=True)
class LedgerStats:
    """Running counts since start, for metrics and the log."""

    written: int = 0
    journaled: int = 0
    replayed: int = 0
    rejected: int = 0
    """Records the store refused for good (kept in the journal's ``.rejected`` file)."""
    dropped: int = 0
    """Records lost: refused by the store outside a replay (unknown session), or not
    written with no journal to keep them, or a journal that failed."""
    aggregated: int = 0
    """Refusals counted in a per-minute counter instead of a row of their own."""
    pruned: int = 0


class RefusalThrottle:
    """Decides which refused handshakes get a row; counts the others per minute.

    In memory and per process: with ``--workers N`` the rate applies to each.
    """

    def __init__(
        self, per_minute: int = REFUSAL_ROWS_PER_MINUTE, *, max_groups: int = MAX_COUNT_GROUPS
    ) -> None:
        self._per_minute = per_minute
        self._max_groups = max_groups
        self._minute: datetime | None = None
        self._rows: dict[tuple[str, str], int] = {}
        self._counts: dict[tuple[datetime, str, str], RefusalCount] = {}
        self.lost = 0
        """Refusals counted while the pending counters were full (a store outage)."""

    def admit(self, refusal: Refusal) -> bool:
        """``True``: write it as a row; ``False``: it was added to a counter."""
        minute = minute_of(refusal.at)
        if self._minute is None or minute > self._minute:
            self._minute = minute
            self._rows.clear()
        group = (refusal.error_code, refusal.key_prefix or "")
        seen = self._rows.get(group, 0)
        if seen < self._per_minute and (seen or len(self._rows) < self._max_groups):
            self._rows[group] = seen + 1
            return True
        self._add(
            RefusalCount(
                minute=self._minute,
                error_code=refusal.error_code,
                key_prefix=refusal.key_prefix,
                key_id=refusal.key_id,
                count=1,
            )
        )
        return False

    def _add(self, count: RefusalCount) -> None:
        group = (count.minute, count.error_code, count.key_prefix or "")
        known = self._counts.get(group)
        if known is None and len(self._counts) >= self._max_groups:
            self.lost += count.count
            return
        total = count.count + (known.count if known else 0)
        self._counts[group] = RefusalCount(
            minute=count.minute,
            error_code=count.error_code,
            key_prefix=count.key_prefix,
            key_id=count.key_id or (known.key_id if known else None),
            count=total,
        )

    @property
    def pending(self) -> int:
        return sum(c.count for c in self._counts.values())

    def take(self) -> list[RefusalCount]:
        counts = list(self._counts.values())
        self._counts.clear()
        return counts

    def restore(self, counts: Sequence[RefusalCount]) -> None:
        """Put back counts the store did not take (they are retried, not journaled)."""
        for count in counts:
            self._add(count)


class LedgerWriter:
    """The one writer of ledger records in a process; the relay's ``LedgerSink``.

    Args:
        enabled: ``False`` drops every record (``store.ledger = false``).
        journal: where records go while the store is down; ``None``: dropped, counted.
        retention: prune refusals and sessions without usage older than this.
        refusals_per_minute: see ``RefusalThrottle``.
        prune_every: seconds between pruning runs (the first runs ``PRUNE_FIRST_S``
            after start).
        clock: now, in UTC (the pruning cutoff).
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        enabled: bool = True,
        journal: Journal | None = None,
        retention: timedelta | None = None,
        queue_limit: int = QUEUE_LIMIT,
        refusals_per_minute: int = REFUSAL_ROWS_PER_MINUTE,
        prune_every: float = PRUNE_EVERY_S,
        prune_first: float = PRUNE_FIRST_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._enabled = enabled
        self._journal = journal
        self._retention = retention
        self._queue: asyncio.Queue[Record] = asyncio.Queue(queue_limit)
        self._throttle = RefusalThrottle(refusals_per_minute)
        self._prune_every = prune_every
        self._prune_first = prune_first
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[Record] = []
        self._closing = False
        self._outage_since: float | None = None
        self._replay_failures = 0
        self._next_replay = 0.0
        self._next_counts = 0.0
        self._next_prune = 0.0
        self._orphans = False
        self.stats = LedgerStats()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def snapshot(self) -> dict[str, int]:
        """Running totals (``LedgerStats``), queue depth and journal bytes, for metrics."""
        counts = dataclasses.asdict(self.stats)
        counts["queue_depth"] = self._queue.qsize()
        counts["journal_bytes"] = self._journal.pending_bytes if self._journal else 0
        return counts

    @property
    def journal(self) -> Journal | None:
        return self._journal

    def start(self) -> None:
        now = asyncio.get_running_loop().time()
        self._next_prune = now + self._prune_first
        self._next_counts = now + COUNTS_FLUSH_S
        self._task = asyncio.create_task(self._run(), name="rtrelay.ledger-writer")

    def submit(self, record: Record) -> None:
        """Queue a record; never blocks (records are per response, not per frame)."""
        if not self._enabled:
            return
        if isinstance(record, Refusal) and not self._throttle.admit(record):
            self.stats.aggregated += 1
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._spill(record)

    def _spill(self, record: Record) -> None:
        """The queue is full: move it and ``record`` to the journal, in order, now.

        Blocks the loop for one ``fsync``, once per ``QUEUE_LIMIT`` records: only
        when the store has been unreachable for a while under load.
        """
        records = [*self._drain(), record]
        ledger_log.warning(
            "ledger queue full; moving it to the journal", extra={"records": len(records)}
        )
        self._journal_now(records)

    def _drain(self) -> list[Record]:
        """Take everything queued, at once."""
        records: list[Record] = []
        while not self._queue.empty():
            records.append(self._queue.get_nowait())
            self._queue.task_done()
        return records

    async def flush(self) -> None:
        """Wait until everything submitted is in the store or the journal."""
        await self._queue.join()

    async def recover(self) -> int:
        """Replay journals an earlier run left (call before ``start``); how many records."""
        if self._journal is None or not self._enabled or not self._journal.orphans():
            return 0
        self._orphans = True  # until a replay gets through them all
        before, started = self.stats.replayed, time.monotonic()
        caught_up = await self._replay(chunks=None)
        replayed = self.stats.replayed - before
        ledger_log.warning(
            "ledger journal of an earlier run replayed into the store",
            extra={
                "event": "journal_replayed",
                "replayed": replayed,
                "rejected": self.stats.rejected,
                "complete": caught_up,
                "seconds": round(time.monotonic() - started, 3),
                "journal": str(self._journal.path),
            },
        )
        return replayed

    async def close(self) -> None:
        """Write what is queued (to the journal if the store cannot take it), then stop.

        Cancelled while it waits, it still journals what it holds before the cancel
        goes on: that part never awaits.
        """
        task = self._task
        if task is None:
            if self._journal is not None:
                self._journal.close()
            return
        self._closing = True
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._queue.join()
        finally:
            self._task = None
            try:
                await cancel_and_wait(task)
            finally:
                left, self._inflight = self._inflight + self._drain(), []
                if left:
                    self._journal_now(left)
        await self._flush_counts(final=True)
        ledger_log.info(
            "ledger writer closed",
            extra={
                "event": "ledger_closed",
                "written": self.stats.written,
                "journaled": self.stats.journaled,
                "replayed": self.stats.replayed,
                "rejected": self.stats.rejected,
                "dropped": self.stats.dropped,
                "journal_bytes": self._journal.pending_bytes if self._journal else 0,
            },
        )
        if self._journal is not None:
            self._journal.close()

    # -- the task ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            batch = await self._take()
            self._inflight = batch
            try:
                if batch:
                    await self._handle(batch)
            except Exception:
                # A bug, not the store (its failures are handled below): keep writing.
                ledger_log.exception("ledger batch failed", extra={"records": len(batch)})
                self.stats.dropped += len(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
            self._inflight = []  # kept when cancelled mid-write: ``close`` journals it
            try:
                await self._maintain()
            except Exception:
                ledger_log.exception("ledger upkeep failed")

    async def _take(self) -> list[Record]:
        queue = self._queue
        if queue.empty():
            try:
                async with asyncio.timeout(TICK_S):
                    first = await queue.get()
            except TimeoutError:
                return []
        else:
            first = queue.get_nowait()
        batch = [first]
        while len(batch) < MAX_BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        return batch

    async def _handle(self, batch: list[Record]) -> None:
        if self._journal is not None and self._journal.backlog:
            await self._to_journal(batch)  # keep order behind what is waiting there
            return
        runs = _runs(batch)
        for i, run in enumerate(runs):
            try:
                await self._store_run(run)
            except _Outage as outage:
                if self._journal is not None:
                    self._note_outage()
                later = [r for rest in runs[i + 1 :] for r in rest]
                await self._to_journal(outage.unwritten + later)
                return

    async def _store_run(self, run: list[Record]) -> None:
        """Write one run of a kind, retrying briefly.

        Raises:
            _Outage: with the records not written (the store is unreachable).
        """
        for delay in (*RETRY_DELAYS, None):
            try:
                await self._apply(run)
                self.stats.written += len(run)
                return
            except Exception as exc:
                if _is_permanent(exc):
                    await self._store_each(run, exc)
                    return
                if delay is None or self._closing or isinstance(exc, TimeoutError):
                    raise _Outage(run) from exc
                ledger_log.warning(
                    "ledger write failed; retrying",
                    extra={"record": type(run[0]).__name__, "retry_in_s": delay},
                    exc_info=True,
                )
                await asyncio.sleep(delay)

    async def _store_each(self, run: list[Record], exc: Exception) -> None:
        """One bad record must not cost the others: write each on its own."""
        if len(run) == 1:
            ledger_log.error(
                "ledger write failed for good",
                extra={"record": type(run[0]).__name__},
                exc_info=exc,
            )
            self.stats.dropped += 1
            return
        ledger_log.debug("batched write failed; writing one by one", exc_info=exc)
        for i, record in enumerate(run):
            try:
                await self._store_run([record])
            except _Outage:
                raise _Outage(run[i:]) from None

    async def _apply(self, run: list[Record]) -> None:
        """Write a run of records of one kind (see ``_runs``) in one store call."""
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await KINDS[type(run[0])].write(self._store, run)

    # -- the journal ---------------------------------------------------------------------

    def _note_outage(self) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._replay_failures = 0
            self._next_replay = asyncio.get_running_loop().time() + REPLAY_BACKOFF[0]
            ledger_log.warning(
                "ledger store unreachable; records go to the journal until it answers",
                extra={
                    "event": "journal_start",
                    "journal": str(self._journal.path) if self._journal else None,
                },
            )

    async def _to_journal(self, records: list[Record]) -> None:
        if not records:
            return
        if self._journal is None:
            self._drop(records, "no journal configured")
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._journal.append, records)
        except OSError:
            ledger_log.error("ledger journal write failed", exc_info=True)
            self._drop(records, "journal write failed")
            return
        self.stats.journaled += len(records)

    def _journal_now(self, records: list[Record]) -> None:
        """As ``_to_journal``, blocking (no loop to hand the fsync to, or no time)."""
        if self._journal is None:
            self._drop(records, "no journal configured")
            return
        try:
            self._journal.append(records)
        except OSError:
            ledger_log.error("ledger journal write failed", exc_info=True)
            self._drop(records, "journal write failed")
            return
        self.stats.journaled += len(records)

    def _drop(self, records: Sequence[Record], why: str) -> None:
        self.stats.dropped += len(records)
        ledger_log.error(
            "ledger records lost: %s",
            why,
            extra={
                "event": "ledger_dropped",
                "records": len(records),
                "responses": sum(isinstance(r, ResponseRecord) for r in records),
            },
        )

    async def _replay(self, *, chunks: int | None) -> bool:
        """Replay journal files into the store; ``True`` once nothing is left.

        Stops after ``chunks`` batches (``None``: no limit) or at the first sign
        that the store is still unreachable.
        """
        journal = self._journal
        assert journal is not None
        done = 0
        for segment in journal.segments():
            try:
                while True:
                    if chunks is not None and done >= chunks:
                        segment.release()
                        return False
                    entries, bad, end = segment.read(MAX_BATCH)
                    if bad:
                        self._reject(bad)
                    if not entries and end == segment.offset:
                        if segment.finish():
                            break
                        continue
                    await self._replay_entries(entries)
                    segment.commit(end)
                    done += 1
            except _Outage:
                segment.release()
                return False
            except BaseException:
                segment.release()
                raise
        self._orphans = journal.orphans()
        return not journal.backlog and not self._orphans

    async def _replay_entries(self, entries: list[Entry]) -> None:
        records = [e.record for e in entries]
        tries = {id(e.record): e.tries for e in entries}
        for run in _runs(records):
            try:
                await self._apply(run)
                self.stats.replayed += len(run)
            except Exception as exc:
                if not _is_permanent(exc) and not await self._reachable():
                    raise _Outage(run) from exc
                for record in run:
                    self.stats.replayed += await self._replay_one(record, tries[id(record)])

    async def _replay_one(self, record: Record, tries: int) -> bool:
        """Write one journaled record, telling a bad record from a store that went away.

        ``True`` if it is in the store now (written, or found written by an earlier replay).
        """
        for attempt in range(3):
            try:
                await self._apply([record])
                return True
            except UnknownSession:
                # Its session may be further on (a full queue spilled out of order).
                if tries + 1 < REPLAY_TRIES and self._journal is not None:
                    self._journal.append([record], tries=tries + 1)
                    return False
                break
            except SessionExists:
                return True  # written by an earlier replay
            except StoreError as exc:
                if isinstance(exc, StoreUnavailable):
                    raise _Outage([record]) from exc
                break
            except Exception as exc:
                if not await self._reachable():
                    raise _Outage([record]) from exc
                await asyncio.sleep(0.2 * (attempt + 1))
        self._reject([encode(record, tries)])
        return False

    def _reject(self, lines: Sequence[bytes]) -> None:
        self.stats.rejected += len(lines)
        ledger_log.error(
            "ledger records refused by the store; kept for an operator",
            extra={
                "event": "journal_rejected",
                "records": len(lines),
                "file": str(self._journal.rejected_path) if self._journal else None,
            },
        )
        if self._journal is not None:
            try:
                self._journal.reject(lines)
            except OSError:
                ledger_log.error("cannot keep rejected ledger records", exc_info=True)
                self.stats.dropped += len(lines)

    async def _reachable(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await self._store.ping()
        except Exception:
            return False
        return True

    # -- timers --------------------------------------------------------------------------

    async def _maintain(self) -> None:
        if self._closing:
            return
        now = asyncio.get_running_loop().time()
        journal = self._journal
        # While records wait in the journal the store is down: upkeep would only wait for
        # its timeout each time, holding up the records queued behind it.
        outage = journal is not None and journal.backlog
        if now >= self._next_counts and not outage:
            self._next_counts = now + COUNTS_FLUSH_S
            await self._flush_counts()
        if journal is not None and (journal.backlog or self._orphans) and now >= self._next_replay:
            await self._replay_due(now)
        if self._retention is not None and now >= self._next_prune and not outage:
            await self._prune(now)

    async def _replay_due(self, now: float) -> None:
        before = self.stats.replayed
        if await self._replay(chunks=REPLAY_CHUNKS_PER_TICK):
            self._replay_failures = 0
            if self._outage_since is not None:
                ledger_log.warning(
                    "ledger store answers again; journal replayed",
                    extra={
                        "event": "journal_replayed",
                        "replayed": self.stats.replayed,
                        "journaled": self.stats.journaled,
                        "rejected": self.stats.rejected,
                        "outage_s": round(time.monotonic() - self._outage_since, 3),
                    },
                )
                self._outage_since = None
        elif self.stats.replayed > before:
            self._next_replay = now  # progress: go on after the queue had its turn
        else:
            delay = REPLAY_BACKOFF[min(self._replay_failures, len(REPLAY_BACKOFF) - 1)]
            self._replay_failures += 1
            self._next_replay = now + delay

    async def _flush_counts(self, *, final: bool = False) -> None:
        counts = self._throttle.take()
        if not counts:
            return
        try:
            async with asyncio.timeout(PING_TIMEOUT_S if final else WRITE_TIMEOUT_S):
                await self._store.record_refusal_counts(counts)
        except Exception:
            if final:
                ledger_log.warning(
                    "refusal counters not written at shutdown",
                    extra={"refusals": sum(c.count for c in counts)},
                    exc_info=True,
                )
                return
            ledger_log.debug("refusal counters not written; retrying later", exc_info=True)
            self._throttle.restore(counts)

    async def _prune(self, now: float) -> None:
        assert self._retention is not None
        before = self._clock() - self._retention
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):  # a black-holed database never answers
                deleted = await self._store.prune(before, limit=PRUNE_BATCH)
        except Exception:
            ledger_log.warning("ledger pruning failed; trying again later", exc_info=True)
            self._next_prune = now + min(self._prune_every, 300.0)
            return
        total = sum(deleted.values())
        self.stats.pruned += total
        more = any(n >= PRUNE_BATCH for n in deleted.values())
        self._next_prune = now if more else now + self._prune_every
        if total:
            ledger_log.info(
                "ledger pruned",
                extra={"event": "pruned", "before": before.isoformat(), **deleted},
            )


def _is_permanent(exc: Exception) -> bool:
    """The record itself is wrong (unknown session, duplicate id): retrying cannot help."""
    return isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailable)


def _runs(records: Sequence[Record]) -> list[list[Record]]:
    """Consecutive records of one ``RecordKind`` that batches, grouped, in order."""
    runs: list[list[Record]] = []
    last: RecordKind | None = None
    for record in records:
        kind = KINDS[type(record)]
        if kind is last and kind.batches:
            runs[-1].append(record)
        else:
            runs.append([record])
        last = kind
    return runs


class SpendBook:
    """Per-key spend, in memory, consistent enough for budget checks."""

    def __init__(
        self,
        store: KeyStore,
        *,
        refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        read_timeout: float | None = None,
    ) -> None:
        """``read_timeout``: seconds one read of the store may take. Past it the read fails for
        every caller waiting on it, instead of a hung database pinning the key's slot in the
        single-flight cache for every later handshake too."""
        self._store = store
        self._stored: LoadingCache[str, Decimal] = LoadingCache(refresh_seconds, clock=clock)
        self._spent: dict[str, Decimal] = {}
        self._read_timeout = read_timeout
        self.on_add: Callable[[str, Decimal], None] | None = None
        """Told of every spend this process adds (``gate.spend_feed``: the other relays)."""

    async def spent(self, key_id: str) -> Decimal:
        """The key's spend, reloaded from the store when the cached value is stale.

        The store adds what other relays spent; never step back below what this
        process metered, which may not be written yet.
        """
        stored = await self._stored.get(key_id, lambda: self._read(key_id))
        spent = self._spent[key_id] = max(stored, self._spent.get(key_id, Decimal(0)))
        return spent

    async def _read(self, key_id: str) -> Decimal:
        async with asyncio.timeout(self._read_timeout):
            return await self._store.spent_usd(key_id)

    def current(self, key_id: str) -> Decimal:
        """The cached spend (no I/O): what a ``response.create`` check uses."""
        return self._spent.get(key_id, Decimal(0))

    def add(self, key_id: str, cost: Decimal, *, announce: bool = True) -> None:
        """Count ``cost`` against the key now; ``announce`` it to ``on_add`` unless it is
        another process's spend being applied here."""
        self._spent[key_id] = self._spent.get(key_id, Decimal(0)) + cost
        if announce and self.on_add is not None:
            self.on_add(key_id, cost)
