"""Behaviour every Leases and RateLimiter must show, run on the in-process and the Redis versions.

Time is an injected fake clock on both, so expiry and sliding windows need no sleeps; the Redis
versions on the server's own clock are covered in test_redis_limits.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable

import pytest
from redis.asyncio import Redis

from rtrelay.gate.limits import (
    RATE_WINDOW,
    LeaseKeeper,
    Leases,
    MemoryLeases,
    MemoryRateLimiter,
    RateLimiter,
)
from rtrelay.gate.redis_limits import RedisLeases, RedisRateLimiter

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def open_test_redis() -> Redis:
    """A client for the local Redis; unreachable fails the test unless RTRELAY_TEST_REDIS=0."""
    if os.environ.get("RTRELAY_TEST_REDIS") == "0":
        pytest.skip("RTRELAY_TEST_REDIS=0")
    client = Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2, socket_timeout=5)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        pytest.fail(f"Redis at 127.0.0.1:6379 is unreachable ({exc!r}); set RTRELAY_TEST_REDIS=0")
    return client


async def delete_prefix(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeLeases = Callable[[float], Leases]


@pytest.fixture(params=BACKENDS)
async def make_leases(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[MakeLeases]:
    if request.param == "memory":
        yield lambda ttl: MemoryLeases(ttl=ttl, clock=clock)
        return
    client = await open_test_redis()
    prefix = f"rtrelay:test:{uuid.uuid4().hex}:"
    try:
        yield lambda ttl: RedisLeases(client, ttl=ttl, prefix=prefix, clock=clock)
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


@pytest.fixture
def leases(make_leases: MakeLeases) -> Leases:
    return make_leases(30.0)


@pytest.fixture(params=BACKENDS)
async def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(clock=clock)
        return
    client = await open_test_redis()
    prefix = f"rtrelay:test:{uuid.uuid4().hex}:"
    try:
        yield RedisRateLimiter(client, prefix=prefix, clock=clock)
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def acquire_all(
    leases: Leases, key_id: str, sessions: Iterable[str], limit: int
) -> list[bool]:
    return [await leases.acquire(key_id, s, limit) for s in sessions]


# --- leases -----------------------------------------------------------------------------------


async def test_acquire_up_to_the_limit_then_refuse(leases: Leases) -> None:
    assert await acquire_all(leases, "k1", ["s1", "s2", "s3"], 3) == [True, True, True]
    assert await leases.acquire("k1", "s4", 3) is False
    assert await leases.count("k1") == 3


async def test_reacquiring_a_held_lease_takes_no_new_slot(leases: Leases) -> None:
    assert await acquire_all(leases, "k1", ["s1", "s2"], 2) == [True, True]
    assert await leases.acquire("k1", "s1", 2) is True
    assert await leases.count("k1") == 2


async def test_release_frees_a_slot(leases: Leases) -> None:
    await acquire_all(leases, "k1", ["s1", "s2"], 2)
    await leases.release("k1", "s1")
    assert await leases.count("k1") == 1
    assert await leases.acquire("k1", "s3", 2) is True
    assert await leases.acquire("k1", "s4", 2) is False


async def test_release_is_idempotent(leases: Leases) -> None:
    await leases.acquire("k1", "s1", 2)
    await leases.release("k1", "s1")
    await leases.release("k1", "s1")
    await leases.release("k1", "never-held")
    await leases.release("unknown-key", "s1")
    assert await leases.count("k1") == 0


async def test_unlimited_leases_are_still_counted(leases: Leases) -> None:
    assert await acquire_all(leases, "k1", [f"s{i}" for i in range(20)], 10**9) == [True] * 20
    assert all([await leases.acquire("k2", f"s{i}", None) for i in range(20)])
    assert await leases.count("k2") == 20


async def test_zero_limit_refuses_everything(leases: Leases) -> None:
    assert await leases.acquire("k1", "s1", 0) is False
    assert await leases.count("k1") == 0


async def test_keys_are_independent(leases: Leases) -> None:
    assert await leases.acquire("k1", "s1", 1) is True
    assert await leases.acquire("k2", "s1", 1) is True
    assert await leases.acquire("k1", "s2", 1) is False
    assert (await leases.count("k1"), await leases.count("k2")) == (1, 1)


async def test_lease_expires_after_ttl_without_renewal(
    make_leases: MakeLeases, clock: FakeClock
) -> None:
    leases = make_leases(30.0)
    assert await leases.acquire("k1", "s1", 1) is True
    clock.advance(29.9)
    assert await leases.count("k1") == 1
    assert await leases.acquire("k1", "s2", 1) is False
    clock.advance(0.1)
    assert await leases.count("k1") == 0
    assert await leases.acquire("k1", "s2", 1) is True


async def test_renew_keeps_a_lease_past_its_ttl(make_leases: MakeLeases, clock: FakeClock) -> None:
    leases = make_leases(30.0)
    await leases.acquire("k1", "s1", 2)
    await leases.acquire("k1", "s2", 2)
    clock.advance(20)
    await leases.renew([("k1", "s1")])
    clock.advance(20)  # 40 s after acquire: only the renewed lease is left
    assert await leases.count("k1") == 1
    assert await leases.acquire("k1", "s3", 2) is True
    assert await leases.acquire("k1", "s2", 2) is False
    clock.advance(10)  # 30 s after the renewal
    await leases.release("k1", "s3")
    assert await leases.count("k1") == 0


async def test_renew_never_resurrects_a_released_or_expired_lease(
    make_leases: MakeLeases, clock: FakeClock
) -> None:
    leases = make_leases(30.0)
    await leases.acquire("k1", "released", None)
    await leases.acquire("k1", "expired", None)
    await leases.release("k1", "released")
    clock.advance(31)
    await leases.renew([("k1", "released"), ("k1", "expired"), ("k9", "never")])
    assert await leases.count("k1") == 0
    assert await leases.count("k9") == 0


async def test_renew_of_nothing_is_a_no_op(leases: Leases) -> None:
    await leases.renew([])
    assert await leases.count("k1") == 0


async def test_concurrent_acquires_never_exceed_the_limit(leases: Leases) -> None:
    results = await asyncio.gather(*(leases.acquire("k1", f"s{i}", 5) for i in range(50)))
    assert results.count(True) == 5
    assert await leases.count("k1") == 5


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl"):
        MemoryLeases(ttl=0)


# --- rate limits ------------------------------------------------------------------------------


async def test_rate_allows_r_per_minute_then_refuses_with_a_delay(limiter: RateLimiter) -> None:
    assert [await limiter.hit("k1", 3) for _ in range(3)] == [None, None, None]
    delay = await limiter.hit("k1", 3)
    assert delay is not None
    assert 0 < delay <= RATE_WINDOW


async def test_rate_window_slides_and_refusals_are_not_counted(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    assert await limiter.hit("k1", 2) is None  # t=0
    clock.advance(30)
    assert await limiter.hit("k1", 2) is None  # t=30
    clock.advance(15)
    assert await limiter.hit("k1", 2) == pytest.approx(15)  # t=45: t=0 leaves at 60
    clock.advance(14)
    assert await limiter.hit("k1", 2) == pytest.approx(1)  # t=59
    clock.advance(1)
    assert await limiter.hit("k1", 2) is None  # t=60: the refusals above did not count
    assert await limiter.hit("k1", 2) == pytest.approx(30)  # t=30 is now the oldest


async def test_rate_refusal_right_after_the_last_start_waits_the_whole_window(
    limiter: RateLimiter,
) -> None:
    assert await limiter.hit("k1", 1) is None
    assert await limiter.hit("k1", 1) == pytest.approx(RATE_WINDOW)


async def test_rate_lowered_limit_waits_for_enough_starts_to_leave(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    for _ in range(3):
        assert await limiter.hit("k1", 3) is None
        clock.advance(10)
    # starts at 0, 10, 20; now 30: a limit of 2 needs the starts at 0 and 10 gone (10 at 70),
    # a limit of 1 all three (20 leaves at 80)
    assert await limiter.hit("k1", 2) == pytest.approx(40)
    assert await limiter.hit("k1", 1) == pytest.approx(50)


async def test_rate_unlimited_and_zero(limiter: RateLimiter) -> None:
    assert all([await limiter.hit("k1", None) is None for _ in range(100)])
    assert await limiter.hit("k1", 1) is None  # the unlimited hits were not counted
    assert await limiter.hit("k2", 0) == RATE_WINDOW


async def test_rate_keys_are_independent(limiter: RateLimiter) -> None:
    assert await limiter.hit("k1", 1) is None
    assert await limiter.hit("k2", 1) is None
    assert await limiter.hit("k1", 1) is not None


async def test_rate_concurrent_hits_never_exceed_the_limit(limiter: RateLimiter) -> None:
    results = await asyncio.gather(*(limiter.hit("k1", 5) for _ in range(50)))
    assert sum(r is None for r in results) == 5


# --- the keeper -------------------------------------------------------------------------------


class RecordingLeases(MemoryLeases):
    """MemoryLeases that reports each renewal, so tests wait on events, not time."""

    def __init__(self, clock: FakeClock, *, failures: int = 0) -> None:
        super().__init__(ttl=30.0, clock=clock)
        self.renewals: asyncio.Queue[list[tuple[str, str]]] = asyncio.Queue()
        self.failures = failures

    async def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        batch = list(leases)
        if self.failures:
            self.failures -= 1
            self.renewals.put_nowait(batch)
            raise ConnectionError("store down")
        await super().renew(batch)
        self.renewals.put_nowait(batch)


async def next_renewal(leases: RecordingLeases) -> list[tuple[str, str]]:
    """The next renewal pass that starts from now on (earlier, queued ones are dropped)."""
    while not leases.renewals.empty():
        leases.renewals.get_nowait()
    return await asyncio.wait_for(leases.renewals.get(), timeout=5)


@pytest.fixture
async def keeper_factory() -> AsyncIterator[Callable[[Leases], LeaseKeeper]]:
    keepers: list[LeaseKeeper] = []

    def make(leases: Leases) -> LeaseKeeper:
        keeper = LeaseKeeper(leases, interval=0.01)
        keepers.append(keeper)
        return keeper

    yield make
    for keeper in keepers:
        await keeper.close()


async def test_keeper_renews_held_leases_and_stops_after_release(
    clock: FakeClock, keeper_factory: Callable[[Leases], LeaseKeeper]
) -> None:
    leases = RecordingLeases(clock)
    keeper = keeper_factory(leases)
    keeper.start()
    assert await keeper.acquire("k1", "s1", 2) is True
    await leases.acquire("k1", "untracked", 2)
    clock.advance(25)
    assert await next_renewal(leases) == [("k1", "s1")]
    clock.advance(25)  # 50 s after acquire, 25 s after the renewal
    assert await leases.count("k1") == 1
    assert keeper.live == {("k1", "s1")}

    await keeper.release("k1", "s1")
    assert keeper.live == frozenset()
    assert await leases.count("k1") == 0


async def test_keeper_does_not_take_a_refused_lease(
    clock: FakeClock, keeper_factory: Callable[[Leases], LeaseKeeper]
) -> None:
    keeper = keeper_factory(MemoryLeases(clock=clock))
    assert await keeper.acquire("k1", "s1", 0) is False
    assert keeper.live == frozenset()


async def test_keeper_logs_renewal_failures_and_keeps_going(
    clock: FakeClock,
    keeper_factory: Callable[[Leases], LeaseKeeper],
    caplog: pytest.LogCaptureFixture,
) -> None:
    leases = RecordingLeases(clock, failures=2)
    keeper = keeper_factory(leases)
    assert await keeper.acquire("k1", "s1", 1)
    with caplog.at_level(logging.WARNING, logger="rtrelay.gate"):
        keeper.start()
        for _ in range(3):  # two failures, then a success
            await asyncio.wait_for(leases.renewals.get(), timeout=5)
        clock.advance(29)
        await next_renewal(leases)  # renewed at t=29 by a task that survived two errors
    clock.advance(29)
    assert await leases.count("k1") == 1
    failures = [r for r in caplog.records if "renewing" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info is not None for r in failures)


async def test_keeper_lifecycle(keeper_factory: Callable[[Leases], LeaseKeeper]) -> None:
    keeper = keeper_factory(MemoryLeases())
    keeper.start()
    with pytest.raises(RuntimeError, match="already started"):
        keeper.start()
    task = keeper._task
    assert task is not None
    await keeper.close()
    assert task.cancelled()
    await keeper.close()
    with pytest.raises(RuntimeError, match="closed"):
        keeper.start()


async def test_keeper_close_does_not_swallow_its_callers_cancellation(
    keeper_factory: Callable[[Leases], LeaseKeeper],
) -> None:
    keeper = keeper_factory(MemoryLeases())
    keeper.start()
    closing: asyncio.Task[None] = asyncio.create_task(keeper.close())
    await asyncio.sleep(0)  # close() is now awaiting the keeper's task
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing


def test_keeper_interval_defaults_to_a_third_of_the_ttl() -> None:
    keeper = LeaseKeeper(MemoryLeases(ttl=9.0))
    assert keeper._interval == pytest.approx(3.0)
