"""Redis leases and rate limits as several relay processes use them: shared, on Redis's own clock.

Every test uses its own random key prefix and deletes its keys afterwards. Redis must be up at
127.0.0.1:6379 (the tests fail otherwise) unless RTRELAY_TEST_REDIS=0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from rtrelay.gate.limits import RATE_WINDOW, LeaseKeeper, LimitStoreError
from rtrelay.gate.redis_limits import DEFAULT_PREFIX, RedisLeases, RedisRateLimiter

pytestmark = pytest.mark.redis


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


@pytest.fixture
def prefix() -> str:
    return f"rtrelay:test:{uuid.uuid4().hex}:"


@pytest.fixture
async def clients(prefix: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two separate clients: two relay processes sharing one Redis."""
    first = await open_test_redis()
    second = await open_test_redis()
    try:
        yield first, second
    finally:
        keys = [key async for key in first.scan_iter(match=f"{prefix}*")]
        if keys:
            await first.delete(*keys)
        await first.aclose()
        await second.aclose()


@pytest.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    """A client for a port nothing listens on, with a password that must never leak."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Redis.from_url(
        f"redis://:hunter2-secret@127.0.0.1:{port}/0",
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )
    yield client
    await client.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``check`` until it holds; the bound is generous so a slow machine does not fail it."""
    async with asyncio.timeout(timeout):
        while True:  # Redis state: nothing to wait on but the next poll
            if await check():
                return
            await asyncio.sleep(0.05)


async def test_two_processes_share_one_limit(clients: tuple[Redis, Redis], prefix: str) -> None:
    a = RedisLeases(clients[0], prefix=prefix)
    b = RedisLeases(clients[1], prefix=prefix)
    assert await a.acquire("k1", "a1", 3) is True
    assert await a.acquire("k1", "a2", 3) is True
    assert await b.acquire("k1", "b1", 3) is True
    assert await b.acquire("k1", "b2", 3) is False
    assert await a.count("k1") == await b.count("k1") == 3
    await a.release("k1", "a1")
    assert await b.acquire("k1", "b2", 3) is True


async def test_concurrent_acquires_from_two_processes_never_exceed_the_limit(
    clients: tuple[Redis, Redis], prefix: str
) -> None:
    sides = [RedisLeases(c, prefix=prefix) for c in clients]
    results = await asyncio.gather(
        *(sides[i % 2].acquire("k1", f"s{i}", 5) for i in range(50)),
    )
    assert results.count(True) == 5
    assert await sides[0].count("k1") == 5


async def test_lease_expires_on_the_server_clock(clients: tuple[Redis, Redis], prefix: str) -> None:
    leases = RedisLeases(clients[0], ttl=1.0, prefix=prefix)
    assert await leases.acquire("k1", "s1", 1) is True
    assert await leases.acquire("k1", "s2", 1) is False

    async def freed() -> bool:
        return await leases.count("k1") == 0

    await eventually(freed)
    assert await leases.acquire("k1", "s2", 1) is True


async def test_keys_carry_an_expiry_so_untouched_ones_vanish(
    clients: tuple[Redis, Redis], prefix: str
) -> None:
    client = clients[0]
    leases = RedisLeases(client, ttl=1.0, prefix=prefix)
    limiter = RedisRateLimiter(client, prefix=prefix)
    await leases.acquire("k1", "s1", None)
    await limiter.hit("k1", 10)
    lease_key, rate_key = leases.key("k1"), limiter.key("k1")
    assert (lease_key, rate_key) == (f"{prefix}lease:k1", f"{prefix}rate:k1")
    assert 0 < await client.pttl(lease_key) <= 2000
    assert 0 < await client.pttl(rate_key) <= (RATE_WINDOW + 1) * 1000


async def test_keeper_keeps_leases_alive_across_processes(
    clients: tuple[Redis, Redis], prefix: str
) -> None:
    held = RedisLeases(clients[0], ttl=2.0, prefix=prefix)
    other = RedisLeases(clients[1], ttl=2.0, prefix=prefix)
    keeper = LeaseKeeper(held, interval=0.2)
    keeper.start()
    try:
        assert await keeper.acquire("k1", "kept", 2) is True
        assert await other.acquire("k1", "crashed", 2) is True  # its process never renews

        async def crashed_one_expired() -> bool:
            return await other.count("k1") == 1

        await eventually(crashed_one_expired)  # 2 s on: the kept lease outlived its ttl
        assert await other.acquire("k1", "new", 2) is True
        assert await other.acquire("k1", "newer", 2) is False
        await keeper.release("k1", "kept")
        assert await other.count("k1") == 1
    finally:
        await keeper.close()


async def test_rate_limit_on_the_server_clock(clients: tuple[Redis, Redis], prefix: str) -> None:
    a = RedisRateLimiter(clients[0], prefix=prefix)
    b = RedisRateLimiter(clients[1], prefix=prefix)
    assert await a.hit("k1", 2) is None
    assert await b.hit("k1", 2) is None
    delay = await a.hit("k1", 2)
    assert delay is not None
    assert RATE_WINDOW - 30 < delay <= RATE_WINDOW  # both starts were just now
    assert await clients[0].zcard(a.key("k1")) == 2  # the refusal was not recorded


async def test_default_prefix_namespaces_keys() -> None:
    client = Redis()
    assert DEFAULT_PREFIX == "rtrelay:"
    assert RedisLeases(client).key("key_1") == "rtrelay:lease:key_1"
    assert RedisRateLimiter(client).key("key_1") == "rtrelay:rate:key_1"
    await client.aclose()


async def test_unreachable_redis_raises_limit_store_error(dead_redis: Redis) -> None:
    leases = RedisLeases(dead_redis)
    limiter = RedisRateLimiter(dead_redis)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: leases.acquire("k1", "s1", 1),
        lambda: leases.count("k1"),
        lambda: leases.renew([("k1", "s1")]),
        lambda: leases.release("k1", "s1"),
        lambda: limiter.hit("k1", 1),
    ]
    for call in calls:
        with pytest.raises(LimitStoreError) as caught:
            await call()
        assert isinstance(caught.value.__cause__, RedisError)
        assert "hunter2" not in str(caught.value)


async def test_keeper_survives_an_unreachable_redis(
    dead_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = LeaseKeeper(RedisLeases(dead_redis), interval=0.01)
    keeper._live.add(("k1", "s1"))  # acquired before Redis became unreachable
    with caplog.at_level(logging.WARNING, logger="rtrelay.gate"):
        keeper.start()
        try:

            async def failed_twice() -> bool:
                return sum("renewing" in r.getMessage() for r in caplog.records) >= 2

            await eventually(failed_twice)
            assert keeper._task is not None
            assert not keeper._task.done()
        finally:
            await keeper.close()
    assert "hunter2" not in caplog.text
