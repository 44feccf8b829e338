"""``FallbackLimits``' decisions without sockets: a shared store that can be switched off, a clock.

The shared side here is the in-process ``MemoryLeases``/``MemoryRateLimiter`` behind a switch
that makes every call raise ``LimitStoreError``, as ``RedisLeases`` does when Redis is down;
the real Redis path is tests/gate/test_limits_outage_functional.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest

from rtrelay.errors import LimitsUnavailable
from rtrelay.gate.fallback import LIMITS_RETRY_AFTER, FallbackLimits, OnError
from rtrelay.gate.limits import LimitStoreError, MemoryLeases, MemoryRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Switchable:
    """Shared leases and rate limits that fail while ``down``, counting the calls made."""

    def __init__(self, clock: Clock) -> None:
        self.leases = MemoryLeases(ttl=30.0, clock=clock)
        self.rate = MemoryRateLimiter(clock=clock)
        self.down = False
        self.calls = 0
        self.limits_asked: list[int | None] = []

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise LimitStoreError("Redis lease acquire failed: ConnectionError")

    @property
    def ttl(self) -> float:
        return self.leases.ttl

    async def acquire(self, key_id: str, session_id: str, limit: int | None) -> bool:
        self._call()
        self.limits_asked.append(limit)
        return await self.leases.acquire(key_id, session_id, limit)

    async def release(self, key_id: str, session_id: str) -> None:
        self._call()
        await self.leases.release(key_id, session_id)

    async def count(self, key_id: str) -> int:
        self._call()
        return await self.leases.count(key_id)

    async def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        self._call()
        await self.leases.renew(leases)

    async def hit(self, key_id: str, per_minute: int | None) -> float | None:
        self._call()
        return await self.rate.hit(key_id, per_minute)

    async def ping(self) -> bool:
        self._call()
        return True


def make(on_error: OnError) -> tuple[FallbackLimits, Switchable, Clock]:
    clock = Clock()
    shared = Switchable(clock)
    limits = FallbackLimits(
        shared, shared, on_error=on_error, ping=shared.ping, probe_interval=1.0, clock=clock
    )
    return limits, shared, clock


async def test_healthy_redis_decides_everything() -> None:
    limits, shared, _ = make("closed")
    assert await limits.acquire("k", "s1", 1)
    assert not await limits.acquire("k", "s2", 1)
    assert await limits.hit("k", 10) is None
    await limits.release("k", "s1")
    assert await shared.leases.count("k") == 0
    assert limits.fallbacks == {} and limits.unreachable is None


@pytest.mark.parametrize("limit", [1, 0])
async def test_closed_refuses_a_limited_key_with_retry_after(limit: int) -> None:
    limits, shared, _ = make("closed")
    shared.down = True
    with pytest.raises(LimitsUnavailable) as refused:
        await limits.acquire("k", "s1", limit)
    assert refused.value.retry_after == LIMITS_RETRY_AFTER
    assert (refused.value.http_status, refused.value.close_code) == (503, 4503)
    with pytest.raises(LimitsUnavailable):
        await limits.hit("k", 10)
    assert limits.unreachable is not None and "ConnectionError" in limits.unreachable


async def test_closed_still_admits_a_key_without_limits_locally() -> None:
    limits, shared, _ = make("closed")
    shared.down = True
    assert await limits.acquire("k", "s1", None)
    assert await limits.hit("k", None) is None
    assert await limits.count("k") == 1
    await limits.release("k", "s1")
    assert await limits.count("k") == 0


async def test_open_admits_on_local_limits_and_counts_each_decision() -> None:
    limits, shared, _ = make("open")
    shared.down = True
    assert await limits.acquire("k", "s1", 1)
    assert not await limits.acquire("k", "s2", 1)  # the local limit holds
    assert await limits.hit("k", 1) is None
    wait = await limits.hit("k", 1)
    assert wait is not None and 0 < wait <= 60
    assert limits.fallbacks == {"concurrency": 2, "rate": 2}


async def test_after_a_failure_redis_is_skipped_for_the_probe_interval_then_tried_again() -> None:
    limits, shared, clock = make("open")
    shared.down = True
    await limits.acquire("k", "s1", None)
    calls = shared.calls
    for i in range(5):  # a burst during the outage costs no further round trips
        await limits.acquire("k", f"burst{i}", None)
    assert shared.calls == calls
    shared.down = False
    clock.now += 1.0
    assert await limits.acquire("k", "s2", None)
    assert shared.calls == calls + 1  # Redis again
    assert limits.unreachable is None
    assert await shared.leases.count("k") == 1


async def test_leases_taken_locally_count_against_the_limit_in_redis_after_recovery() -> None:
    limits, shared, clock = make("open")
    shared.down = True
    assert await limits.acquire("k", "outage", 2)
    shared.down = False
    clock.now += 1.0
    assert await limits.acquire("k", "after", 2)
    assert shared.limits_asked[-1] == 1  # 2 minus the one held locally
    assert not await limits.acquire("k", "third", 2)
    await limits.release("k", "outage")  # released where it was taken
    assert await limits.acquire("k", "third", 2)
    assert await shared.leases.count("k") == 2


async def test_release_and_renew_never_raise_while_redis_is_down() -> None:
    limits, shared, clock = make("closed")
    assert await limits.acquire("k", "in-redis", 3)
    shared.down = True
    clock.now += 1.0
    await limits.renew([("k", "in-redis")])
    await limits.release("k", "in-redis")  # left to expire in Redis after its TTL
    assert limits.unreachable is not None


async def test_readiness_check_pings_and_recovery_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits, shared, clock = make("closed")
    caplog.set_level(logging.INFO, logger="rtrelay.gate")
    shared.down = True
    assert await limits.check() is not None
    for _ in range(3):
        clock.now += 1.0
        with pytest.raises(LimitsUnavailable):
            await limits.acquire("k", "s", 1)
    shared.down = False
    assert await limits.check() is None
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Redis unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
