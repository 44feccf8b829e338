"""Per-key concurrency leases and session-start rate limits: the protocols and in-process versions.

A *lease* is one open session counted against its key's ``max_sessions``. Leases expire unless
renewed within ``ttl`` seconds, so a process that dies (SIGKILL, OOM, lost machine) frees its
keys' slots by itself; the live process renews its own leases from one :class:`LeaseKeeper` task.

A *rate limit* counts session starts per key over a sliding 60-second window. Both are small
protocols (DESIGN.md, "Interfaces at the seams") with an in-process implementation here and a
shared Redis one in :mod:`rtrelay.gate.redis_limits`.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from rtrelay.log import gate_log
from rtrelay.tasks import cancel_and_wait

__all__ = [
    "DEFAULT_LEASE_TTL",
    "RATE_WINDOW",
    "Clock",
    "LeaseKeeper",
    "Leases",
    "LimitStoreError",
    "MemoryLeases",
    "MemoryRateLimiter",
    "RateLimiter",
]

Clock = Callable[[], float]
"""Seconds on any fixed origin; only differences matter."""

DEFAULT_LEASE_TTL: Final = 30.0
"""Seconds a lease lives without a renewal."""

RATE_WINDOW: Final = 60.0
"""The sliding window of a per-minute rate limit, in seconds."""


class LimitStoreError(RuntimeError):
    """The store behind a shared limiter (Redis) failed; admission decides fail-open or closed."""


class Leases(Protocol):
    """Concurrency leases: at most ``limit`` live sessions per key, across every sharing relay."""

    @property
    def ttl(self) -> float:
        """Seconds a lease lives without a renewal."""
        ...

    async def acquire(self, key_id: str, session_id: str, limit: int | None) -> bool:
        """Take a lease if the key holds fewer than ``limit`` (check and take are one atomic step).

        ``None`` means unlimited, but the lease is still taken so it is counted. Acquiring a
        lease the session already holds refreshes it and returns ``True``.

        Raises:
            LimitStoreError: the shared store is unreachable.
        """
        ...

    async def release(self, key_id: str, session_id: str) -> None:
        """Give a lease back; releasing one that is not held is a no-op."""
        ...

    async def count(self, key_id: str) -> int:
        """Live (unexpired) leases of this key."""
        ...

    async def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        """Extend each given ``(key_id, session_id)`` lease to a full ``ttl`` from now.

        A lease that was released or has already expired is *not* taken again: a renewal
        racing a release must never resurrect the lease.
        """
        ...


class RateLimiter(Protocol):
    """Session starts per key over a sliding 60-second window."""

    async def hit(self, key_id: str, per_minute: int | None) -> float | None:
        """Count one session start, if allowed.

        Returns:
            ``None`` if the start is allowed (and now counted); otherwise the seconds, in
            ``(0, 60]``, until one would be, for ``Retry-After: ceil(delay)``. A refused start
            is not counted. ``per_minute=None`` means unlimited (nothing is counted).

        Raises:
            LimitStoreError: the shared store is unreachable.
        """
        ...


class MemoryLeases:
    """Leases held in this process: exact, but shared by nothing else.

    Every method runs without awaiting, so check-and-take is atomic on the event loop.
    """

    __slots__ = ("_clock", "_held", "_ttl")

    def __init__(self, *, ttl: float = DEFAULT_LEASE_TTL, clock: Clock = time.monotonic) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._ttl = ttl
        self._clock = clock
        self._held: dict[str, dict[str, float]] = {}  # key_id -> session_id -> expiry

    @property
    def ttl(self) -> float:
        return self._ttl

    async def acquire(self, key_id: str, session_id: str, limit: int | None) -> bool:
        now = self._clock()
        held = self._live(key_id, now)
        if session_id not in held and limit is not None and len(held) >= limit:
            return False
        held[session_id] = now + self._ttl
        self._held[key_id] = held
        return True

    async def release(self, key_id: str, session_id: str) -> None:
        held = self._held.get(key_id)
        if held is not None:
            held.pop(session_id, None)
            if not held:
                del self._held[key_id]

    async def count(self, key_id: str) -> int:
        return len(self._live(key_id, self._clock()))

    async def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        now = self._clock()
        expiry = now + self._ttl
        for key_id, session_id in leases:
            held = self._live(key_id, now)
            if session_id in held:
                held[session_id] = expiry

    def _live(self, key_id: str, now: float) -> dict[str, float]:
        """The key's unexpired leases, pruning the rest (an empty dict is not stored)."""
        held = self._held.get(key_id)
        if held is None:
            return {}
        for session_id in [s for s, expiry in held.items() if expiry <= now]:
            del held[session_id]
        if not held:
            del self._held[key_id]
        return held


class MemoryRateLimiter:
    """An exact sliding-window rate limit kept in this process (a deque of start times per key)."""

    __slots__ = ("_clock", "_starts")

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._starts: dict[str, collections.deque[float]] = {}

    async def hit(self, key_id: str, per_minute: int | None) -> float | None:
        if per_minute is None:
            return None
        if per_minute <= 0:
            return RATE_WINDOW
        now = self._clock()
        starts = self._starts.get(key_id)
        if starts is None:
            starts = self._starts[key_id] = collections.deque()
        while starts and starts[0] <= now - RATE_WINDOW:
            starts.popleft()
        if len(starts) >= per_minute:
            # The start that must leave the window before one more fits (the limit may
            # have been lowered, so it is not always the oldest).
            return starts[len(starts) - per_minute] + RATE_WINDOW - now
        starts.append(now)
        return None


class LeaseKeeper:
    """Renews every lease this process holds, from one background task (not one per session).

    The relay acquires and releases through the keeper so it knows which leases are live;
    every ``interval`` (default ``ttl / 3``) it renews them all in one call. A failed renewal
    is logged and retried on the next tick; nothing escapes the task.
    """

    __slots__ = ("_closed", "_interval", "_leases", "_live", "_task")

    def __init__(self, leases: Leases, *, interval: float | None = None) -> None:
        self._leases = leases
        self._interval = leases.ttl / 3 if interval is None else interval
        if self._interval <= 0:
            raise ValueError("interval must be positive")
        self._live: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def leases(self) -> Leases:
        return self._leases

    @property
    def live(self) -> frozenset[tuple[str, str]]:
        """The ``(key_id, session_id)`` pairs being renewed."""
        return frozenset(self._live)

    async def acquire(self, key_id: str, session_id: str, limit: int | None) -> bool:
        """:meth:`Leases.acquire`, then keep the lease renewed while it is held."""
        acquired = await self._leases.acquire(key_id, session_id, limit)
        if acquired:
            self._live.add((key_id, session_id))
        return acquired

    async def release(self, key_id: str, session_id: str) -> None:
        """Stop renewing the lease, then :meth:`Leases.release` it (idempotent)."""
        self._live.discard((key_id, session_id))
        await self._leases.release(key_id, session_id)

    def start(self) -> None:
        """Start the renewal task (needs a running event loop).

        Raises:
            RuntimeError: already started, or closed.
        """
        if self._closed:
            raise RuntimeError("LeaseKeeper is closed; create a new one")
        if self._task is not None:
            raise RuntimeError("LeaseKeeper is already started")
        self._task = asyncio.create_task(self._run(), name="rtrelay-lease-keeper")

    async def close(self) -> None:
        """Stop renewing (idempotent). Leases still held then expire after ``ttl``."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)

    async def renew_now(self) -> None:
        """One renewal pass over every live lease; failures are logged, not raised."""
        live = list(self._live)
        if not live:
            return
        try:
            await self._leases.renew(live)
        except Exception:
            gate_log.warning("renewing %d session lease(s) failed", len(live), exc_info=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.renew_now()
