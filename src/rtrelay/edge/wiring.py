"""Building the gate's parts from settings: limiters, key store, token verifier.

The only place that picks implementations (in-process vs Redis, which store),
so the rest of the relay sees protocols.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from rtrelay.config import Settings
from rtrelay.gate.admission import Gate
from rtrelay.gate.limits import LeaseKeeper, MemoryLeases, MemoryRateLimiter, RateLimiter

__all__ = ["Closer", "build_gate", "close_all"]

Closer = Callable[[], Awaitable[None]]


async def build_gate(settings: Settings, environ: Mapping[str, str]) -> tuple[Gate, list[Closer]]:
    closers: list[Closer] = []
    rate: RateLimiter
    if settings.redis.url:
        from redis.asyncio import Redis

        from rtrelay.gate.redis_limits import RedisLeases, RedisRateLimiter

        redis = Redis.from_url(settings.redis.url)
        closers.append(redis.aclose)
        keeper = LeaseKeeper(RedisLeases(redis))
        rate = RedisRateLimiter(redis)
    else:
        keeper = LeaseKeeper(MemoryLeases())
        rate = MemoryRateLimiter()
    keeper.start()
    closers.append(keeper.close)
    gate = Gate(
        keys=None,
        leases=keeper,
        rate=rate,
        spend=None,
        allowed_origins=settings.server.allowed_origins,
    )
    return gate, closers


async def close_all(closers: list[Closer]) -> None:
    for close in reversed(closers):
        await close()
