"""``LoadingCache``: one load per burst, expiry, failures and cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rtrelay.cache import LoadingCache


class Loader:
    def __init__(self, value: str = "v", *, fail: bool = False) -> None:
        self.calls = 0
        self.value = value
        self.fail = fail
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise LookupError("store down")
        return f"{self.value}{self.calls}"


async def test_a_burst_of_misses_loads_once() -> None:
    cache: LoadingCache[str, str] = LoadingCache(5.0)
    load = Loader()
    waiters = [asyncio.ensure_future(cache.get("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    load.release.set()
    assert await asyncio.gather(*waiters) == ["v1"] * 50
    assert load.calls == 1
    assert await cache.get("k", load) == "v1"  # served from the cache
    assert load.calls == 1


async def test_an_expired_value_is_loaded_again() -> None:
    now = [0.0]
    cache: LoadingCache[str, str] = LoadingCache(5.0, clock=lambda: now[0])
    load = Loader()
    load.release.set()
    assert await cache.get("k", load) == "v1"
    now[0] = 4.9
    assert await cache.get("k", load) == "v1"
    now[0] = 5.1
    assert await cache.get("k", load) == "v2"
    assert await cache.get("other", load) == "v3"  # keys are separate


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    seen: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    cache: LoadingCache[str, str] = LoadingCache(5.0)
    load = Loader(fail=True)
    waiters = [asyncio.ensure_future(cache.get("k", load)) for _ in range(3)]
    await asyncio.sleep(0)
    load.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    load.fail = False
    assert await cache.get("k", load) == "v2"
    assert seen == []


async def test_a_cancelled_waiter_does_not_cancel_the_load_for_the_others() -> None:
    seen: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    cache: LoadingCache[str, str] = LoadingCache(5.0)
    load = Loader()
    first = asyncio.ensure_future(cache.get("k", load))
    second = asyncio.ensure_future(cache.get("k", load))
    await asyncio.sleep(0)
    first.cancel()
    load.release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "v1"
    # Every waiter gone before a failing load ends: the failure is still retrieved.
    failing = Loader(fail=True)
    lone = asyncio.ensure_future(cache.get("f", failing))
    await asyncio.sleep(0)
    lone.cancel()
    failing.release.set()
    await asyncio.sleep(0.01)
    assert seen == []
    assert load.calls == 1


async def test_the_cache_empties_itself_past_its_bound() -> None:
    cache: LoadingCache[int, int] = LoadingCache(60.0, max_entries=3)
    loads: list[int] = []

    async def load_for(key: int) -> int:
        loads.append(key)
        return key

    for key in (1, 2, 3, 4, 1):
        assert await cache.get(key, lambda key=key: load_for(key)) == key
    assert loads == [1, 2, 3, 4, 1]
