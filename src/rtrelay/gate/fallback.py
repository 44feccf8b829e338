"""Shared limits (Redis) with an explicit policy for when Redis cannot be reached.

``[redis] on_error`` decides what a handshake gets while Redis is down:

- ``closed`` (the default): a key with a concurrency or rate limit is refused with
  ``limits_unavailable`` (503 + ``Retry-After``, or 4503 after the upgrade). A key with no
  limit has nothing to enforce and is admitted; its lease is counted in this process.
- ``open``: the key is admitted on this process's own in-memory limits, exact for this
  process and blind to the others; each such decision counts in
  ``rtrelay_limits_fallback_total``.

After a failure Redis is skipped for ``probe_interval`` seconds (so a dead or black-holed
Redis costs one failed call per interval, not one per handshake), then tried again: a Redis
that comes back is used again with no restart.

What happens to leases taken locally during an outage (``open``, or unlimited keys): they
stay local until their session ends and are never copied into Redis (a copy could exceed a
limit another relay enforced meanwhile). To keep this process within a key's limit across
the recovery, an acquire in Redis asks for the limit *minus this process's local leases of
that key*. Other relays cannot see those local leases, so until those sessions end a key may
hold, fleet-wide, up to its limit in Redis plus what each relay admitted locally. Session
starts counted locally are likewise not in Redis's window: for up to 60 s after recovery a
key may start up to its per-minute limit more. Leases held in Redis when it went down (or
that expired in it while renewals failed) are not taken again by renewal: a session that
outlives an outage longer than the lease TTL is no longer counted in Redis.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Final, Literal

from rtrelay.errors import LimitsUnavailable
from rtrelay.gate.limits import (
    Clock,
    Leases,
    LimitStoreError,
    MemoryLeases,
    MemoryRateLimiter,
    RateLimiter,
)
from rtrelay.log import gate_log

__all__ = ["LIMITS_RETRY_AFTER", "FallbackLimits", "OnError"]

OnError = Literal["closed", "open"]

LIMITS_RETRY_AFTER: Final = 5
"""``Retry-After`` seconds of a ``limits_unavailable`` refusal."""
PROBE_INTERVAL: Final = 1.0
"""Seconds Redis is skipped after a failed call."""


class FallbackLimits:
    """:class:`Leases` and :class:`RateLimiter` in Redis, with this process's own as fallback.

    Args:
        leases, rate: the shared (Redis) implementations.
        on_error: ``closed`` refuses limited keys while Redis is down, ``open`` admits them on
            local limits.
        ping: a cheap round trip to Redis, for readiness checks.
    """

    __slots__ = (
        "_clock",
        "_down_until",
        "_leases",
        "_local_ids",
        "_local_leases",
        "_local_rate",
        "_ping",
        "_probe_interval",
        "_rate",
        "fallbacks",
        "on_error",
        "unreachable",
    )

    def __init__(
        self,
        leases: Leases,
        rate: RateLimiter,
        *,
        on_error: OnError,
        ping: Callable[[], Awaitable[object]],
        probe_interval: float = PROBE_INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        self._leases = leases
        self._rate = rate
        self.on_error: OnError = on_error
        self._ping = ping
        self._probe_interval = probe_interval
        self._clock = clock
        self._local_leases = MemoryLeases(ttl=leases.ttl, clock=clock)
        self._local_rate = MemoryRateLimiter(clock=clock)
        self._local_ids: set[tuple[str, str]] = set()
        self._down_until = float("-inf")
        self.unreachable: str | None = None
        """Why the last call to Redis failed; ``None`` once one succeeds."""
        self.fallbacks: Counter[str] = Counter()
        """Decisions made on local limits, by limit (``concurrency``, ``rate``); the relay
        folds them into ``rtrelay_limits_fallback_total``."""

    @property
    def ttl(self) -> float:
        return self._leases.ttl

    # -- Leases -------------------------------------------------------------------------

    async def acquire(self, key_id: str, session_id: str, limit: int | None) -> bool:
        """Take a lease in Redis, or by ``on_error`` while it is down.

        Raises:
            LimitsUnavailable: Redis is down, ``on_error = "closed"`` and ``limit`` is set.
        """
        if self._usable():
            shared_limit = limit
            if limit is not None:  # this process's outage leases still count (see module doc)
                shared_limit = max(0, limit - await self._local_leases.count(key_id))
            try:
                taken = await self._leases.acquire(key_id, session_id, shared_limit)
            except LimitStoreError as exc:
                self._failed(exc)
            else:
                self._recovered()
                return taken
        self._refuse_if_closed(limit)
        self.fallbacks["concurrency"] += 1
        taken = await self._local_leases.acquire(key_id, session_id, limit)
        if taken:
            self._local_ids.add((key_id, session_id))
        return taken

    async def release(self, key_id: str, session_id: str) -> None:
        """Give a lease back where it was taken; never raises (a lease left in a Redis that
        cannot be reached expires there after its TTL)."""
        if (key_id, session_id) in self._local_ids:
            self._local_ids.discard((key_id, session_id))
            await self._local_leases.release(key_id, session_id)
            return
        if not self._usable():
            return
        try:
            await self._leases.release(key_id, session_id)
        except LimitStoreError as exc:
            self._failed(exc)
        else:
            self._recovered()

    async def count(self, key_id: str) -> int:
        local = await self._local_leases.count(key_id)
        if not self._usable():
            return local
        try:
            shared = await self._leases.count(key_id)
        except LimitStoreError as exc:
            self._failed(exc)
            return local
        self._recovered()
        return local + shared

    async def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        """Renew local leases here and the others in Redis (a failure is recorded, not raised:
        ``unreachable`` and the once-per-outage log line already say it)."""
        local: list[tuple[str, str]] = []
        shared: list[tuple[str, str]] = []
        for lease in leases:
            (local if lease in self._local_ids else shared).append(lease)
        await self._local_leases.renew(local)
        if not shared or not self._usable():
            return
        try:
            await self._leases.renew(shared)
        except LimitStoreError as exc:
            self._failed(exc)
        else:
            self._recovered()

    # -- RateLimiter --------------------------------------------------------------------

    async def hit(self, key_id: str, per_minute: int | None) -> float | None:
        """Count a session start in Redis, or by ``on_error`` while it is down.

        Raises:
            LimitsUnavailable: Redis is down, ``on_error = "closed"`` and ``per_minute`` is set.
        """
        if per_minute is None:
            return None
        if self._usable():
            try:
                wait = await self._rate.hit(key_id, per_minute)
            except LimitStoreError as exc:
                self._failed(exc)
            else:
                self._recovered()
                return wait
        self._refuse_if_closed(per_minute)
        self.fallbacks["rate"] += 1
        return await self._local_rate.hit(key_id, per_minute)

    # -- health -------------------------------------------------------------------------

    async def check(self) -> str | None:
        """Ping Redis now (for ``/readyz``): ``None`` if it answered, else why not."""
        try:
            await self._ping()
        except Exception as exc:  # the readiness probe reports any failure, never raises
            self._failed(LimitStoreError(f"Redis ping failed: {type(exc).__name__}"))
            return self.unreachable
        self._recovered()
        return None

    def _usable(self) -> bool:
        return self._clock() >= self._down_until

    def _refuse_if_closed(self, limit: int | None) -> None:
        if limit is not None and self.on_error == "closed":
            raise LimitsUnavailable(
                "The relay cannot reach the shared limits store to check this key's limits; "
                "retry shortly.",
                retry_after=LIMITS_RETRY_AFTER,
            )

    def _failed(self, exc: LimitStoreError) -> None:
        self._down_until = self._clock() + self._probe_interval
        if self.unreachable is None:
            how = (
                "refusing sessions of keys with limits (limits_unavailable)"
                if self.on_error == "closed"
                else "admitting sessions on this process's own limits"
            )
            gate_log.warning(
                "Redis unreachable (%s): %s until it answers",
                exc,
                how,
                extra={"event": "limits_unreachable", "on_error": self.on_error},
            )
        self.unreachable = str(exc)

    def _recovered(self) -> None:
        self._down_until = float("-inf")  # a readiness ping that answered ends the skip too
        if self.unreachable is not None:
            self.unreachable = None
            gate_log.info(
                "Redis reachable again: shared limits in use",
                extra={"event": "limits_recovered", "local_leases": len(self._local_ids)},
            )
