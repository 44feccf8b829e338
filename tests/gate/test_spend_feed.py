"""Spend news between relay processes over a real Redis (``gate/spend_feed.py``)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import cast

import pytest
from redis.asyncio import Redis

from rtrelay.gate.spend_feed import CHANNEL, SpendFeed
from rtrelay.ledger.store import Store
from rtrelay.ledger.writer import SpendBook

REDIS_URL = "redis://127.0.0.1:6379/0"


def book() -> SpendBook:
    return SpendBook(cast(Store, None))  # current()/add() never touch the store


@pytest.fixture
async def feeds() -> AsyncIterator[tuple[SpendBook, SpendBook]]:
    a, b = book(), book()
    feed_a, feed_b = (
        SpendFeed(Redis.from_url(REDIS_URL), a),
        SpendFeed(Redis.from_url(REDIS_URL), b),
    )
    feed_a.start()
    feed_b.start()
    try:
        async with asyncio.timeout(5):
            await feed_a.subscribed.wait()
            await feed_b.subscribed.wait()
        yield a, b
    finally:
        await feed_a.close()
        await feed_b.close()


async def until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not callable(condition) or not condition():
            await asyncio.sleep(0.005)


async def test_what_one_process_bills_reaches_the_other_once(
    feeds: tuple[SpendBook, SpendBook],
) -> None:
    a, b = feeds
    key = f"key_{secrets.token_hex(4)}"
    a.add(key, Decimal("0.25"))
    a.add(key, Decimal("0.5"))
    await until(lambda: b.current(key) == Decimal("0.75"))
    b.add(key, Decimal("1"))
    await until(lambda: a.current(key) == Decimal("1.75"))
    await asyncio.sleep(0.1)  # any echo of its own news would have arrived by now
    assert (a.current(key), b.current(key)) == (Decimal("1.75"), Decimal("1.75"))


async def test_garbage_on_the_channel_changes_nothing(feeds: tuple[SpendBook, SpendBook]) -> None:
    a, _ = feeds
    key = f"key_{secrets.token_hex(4)}"
    redis = Redis.from_url(REDIS_URL)
    try:
        for junk in (
            b"x",
            b"other " + key.encode() + b" NaN",
            b"other " + key.encode() + b" -5",
            b"other " + key.encode() + b" 1e999999",
            b"\xff\xfe",
            b"a b c d",
        ):
            await redis.publish(CHANNEL, junk)
        await redis.publish(CHANNEL, b"other " + key.encode() + b" 0.125")
    finally:
        await redis.aclose()
    await until(lambda: a.current(key) == Decimal("0.125"))


async def test_an_unreachable_redis_never_reaches_the_biller() -> None:
    spend = book()
    feed = SpendFeed(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2), spend)
    feed.start()
    try:
        spend.add("key_x", Decimal("2"))  # billing goes on
        await until(lambda: feed.dropped >= 1)
        assert spend.current("key_x") == Decimal("2")
    finally:
        await feed.close()
