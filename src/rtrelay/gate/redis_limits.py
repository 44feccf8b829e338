"""Concurrency leases and session-start rate limits kept in Redis, shared by every relay process.

Each key has a sorted set: ``<prefix>lease:<key_id>`` scores session ids by their expiry, and
``<prefix>rate:<key_id>`` scores session starts by their time. Every decision is one Lua script
(prune expired members, count, maybe add), which Redis runs atomically, so two relays can never
both take the last slot. Times are integer microseconds from Redis ``TIME`` by default, so the
relays' own clocks never have to agree; a ``clock`` may be injected instead (tests), and then
every relay sharing the keys must use the same one. Each set also carries a key expiry, so a key
nobody touches any more disappears by itself.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Iterator
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rtrelay.gate.limits import DEFAULT_LEASE_TTL, RATE_WINDOW, Clock, LimitStoreError

__all__ = ["DEFAULT_PREFIX", "RedisLeases", "RedisRateLimiter"]

DEFAULT_PREFIX: Final = "rtrelay:"

# ARGV[1] is "now" in microseconds, or "" for the server's clock. Scripts are replicated by
# effect (the default since Redis 5), so reading TIME inside them is allowed.
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

# KEYS[1] lease set; ARGV: now, ttl_us, session_id, limit (-1 = unlimited). Returns 1 or 0.
_ACQUIRE: Final = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
local limit = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if limit >= 0 and not redis.call('ZSCORE', KEYS[1], ARGV[3])
   and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000) + 1000)
return 1
"""
)

# KEYS[1] lease set; ARGV: now. Returns the number of live leases.
_COUNT: Final = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)

# KEYS[1] lease set; ARGV: now, ttl_us, session ids... ZADD XX only updates members that are
# still there, so a renewal racing a release (or an expiry) never takes the lease again.
_RENEW: Final = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000) + 1000)
end
return 0
"""
)

# KEYS[1] start set; ARGV: now, window_us, limit, unique member. Returns -1 when the start is
# allowed (and recorded), else the microseconds until the start that must leave the window does.
_HIT: Final = (
    _NOW
    + """
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  if limit <= 0 then
    return window
  end
  local blocking = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  return tonumber(blocking[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return -1
"""
)

_MICRO: Final = 1_000_000


def _now_arg(clock: Clock | None) -> str | int:
    return "" if clock is None else round(clock() * _MICRO)


@contextlib.contextmanager
def _store_errors(operation: str) -> Iterator[None]:
    """Translate redis-py errors at this one boundary (no URL or password in the message)."""
    try:
        yield
    except (RedisError, OSError) as exc:  # OSError: a socket error redis-py did not wrap
        raise LimitStoreError(f"Redis {operation} failed: {type(exc).__name__}") from exc


class RedisLeases:
    """:class:`~rtrelay.gate.limits.Leases` in Redis, shared by every relay using the same keys.

    Args:
        redis: a ``redis.asyncio.Redis`` client; the caller owns (and closes) it.
        ttl: seconds a lease lives without a renewal.
        prefix: namespace for the Redis keys.
        clock: ``None`` uses Redis ``TIME``; otherwise a clock every sharing relay uses too.
    """

    __slots__ = ("_acquire", "_clock", "_count", "_prefix", "_redis", "_renew", "_ttl")

    def __init__(
        self,
        redis: Redis,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._redis = redis
        self._ttl = ttl
        self._prefix = prefix
        self._clock = clock
        self._acquire = redis.register_script(_ACQUIRE)
        self._count = redis.register_script(_COUNT)
        self._renew = redis.register_script(_RENEW)

    @property
    def ttl(self) -> float:
        return self._ttl

    def key(self, key_id: str) -> str:
        """The Redis key holding ``key_id``'s leases."""
        return f"{self._prefix}lease:{key_id}"

    async def acquire(self, key_id: str, session_id: str, limit: int | None) -> bool:
        args = (_now_arg(self._clock), self._ttl_us, session_id, -1 if limit is None else limit)
        with _store_errors("lease acquire"):
            taken = await self._acquire(keys=[self.key(key_id)], args=args)
        return bool(taken)

    async def release(self, key_id: str, session_id: str) -> None:
        with _store_errors("lease release"):
            await self._redis.zrem(self.key(key_id), session_id)

    async def count(self, key_id: str) -> int:
        with _store_errors("lease count"):
            live = await self._count(keys=[self.key(key_id)], args=[_now_arg(self._clock)])
        return int(live)

    async def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        by_key: dict[str, list[str]] = {}
        for key_id, session_id in leases:
            by_key.setdefault(key_id, []).append(session_id)
        if not by_key:
            return
        now = _now_arg(self._clock)
        with _store_errors("lease renew"):
            # One round trip for all keys; one script call per key keeps each call on one slot.
            async with self._redis.pipeline(transaction=False) as pipe:
                for key_id, session_ids in by_key.items():
                    await self._renew(
                        keys=[self.key(key_id)], args=[now, self._ttl_us, *session_ids], client=pipe
                    )
                await pipe.execute()

    @property
    def _ttl_us(self) -> int:
        return round(self._ttl * _MICRO)


class RedisRateLimiter:
    """:class:`~rtrelay.gate.limits.RateLimiter` in Redis: an exact sliding window per key.

    Args:
        redis: a ``redis.asyncio.Redis`` client; the caller owns (and closes) it.
        prefix: namespace for the Redis keys.
        clock: ``None`` uses Redis ``TIME``; otherwise a clock every sharing relay uses too.
    """

    __slots__ = ("_clock", "_hit", "_prefix")

    def __init__(
        self, redis: Redis, *, prefix: str = DEFAULT_PREFIX, clock: Clock | None = None
    ) -> None:
        self._prefix = prefix
        self._clock = clock
        self._hit = redis.register_script(_HIT)

    def key(self, key_id: str) -> str:
        """The Redis key holding ``key_id``'s recent session starts."""
        return f"{self._prefix}rate:{key_id}"

    async def hit(self, key_id: str, per_minute: int | None) -> float | None:
        if per_minute is None:
            return None
        if per_minute <= 0:
            return RATE_WINDOW
        # The member only has to be unique: two starts in the same microsecond both count.
        args = (
            _now_arg(self._clock),
            round(RATE_WINDOW * _MICRO),
            per_minute,
            secrets.token_hex(8),
        )
        with _store_errors("rate limit"):
            delay_us = int(await self._hit(keys=[self.key(key_id)], args=args))
        return None if delay_us < 0 else delay_us / _MICRO
