"""Several relays sharing Redis (leases, rate limits) and one store, on both databases."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
from redis.asyncio import Redis

from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.store import open_store
from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, read_error_and_close, running_relay, upgrade_headers

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=200)) as p:
        yield p


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    if os.environ.get("RTRELAY_TEST_REDIS") == "0":
        pytest.skip("RTRELAY_TEST_REDIS=0")
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except OSError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc} (scripts/test starts it)")
    finally:
        await redis.aclose()
    return REDIS_URL


async def test_two_relays_share_one_concurrency_limit_and_rate_limit(
    provider: MockProvider, store_url: str, redis_url: str
) -> None:
    settings = mock_channel_settings(
        provider.url, store={"url": store_url}, redis={"url": redis_url}
    )
    store = await open_store(store_url)
    try:
        _, key = await store.create_key(
            KeySpec(name=f"shared-{secrets.token_hex(3)}", max_sessions=1, sessions_per_minute=3)
        )
    finally:
        await store.close()
    auth = {"Authorization": f"Bearer {key}"}
    async with (
        running_relay(settings) as a,
        running_relay(settings) as b,
        aiohttp.ClientSession() as http,
    ):
        async with http.ws_connect(a.realtime(), headers=auth) as ws:
            await ws.receive_json()
            async with http.get(b.realtime(), headers=upgrade_headers(**auth)) as resp:
                assert resp.status == 429
                assert (await resp.json())["error"]["code"] == "concurrency_limit_exceeded"
        async with asyncio.timeout(10):
            while a.relay.sessions:
                await asyncio.sleep(0.01)
        async with http.ws_connect(b.realtime(), headers=auth) as ws:  # the lease came back
            await ws.receive_json()
        async with asyncio.timeout(10):
            while b.relay.sessions:
                await asyncio.sleep(0.01)
        async with http.ws_connect(a.realtime(), headers=auth) as ws:  # third start
            await ws.receive_json()
        async with asyncio.timeout(10):
            while a.relay.sessions:
                await asyncio.sleep(0.01)
        async with http.get(b.realtime(), headers=upgrade_headers(**auth)) as resp:
            assert resp.status == 429
            assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"


async def test_metering_through_the_relay_lands_in_either_database(
    provider: MockProvider, store_url: str
) -> None:
    settings = mock_channel_settings(provider.url, store={"url": store_url})
    async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
        record, key = await relay.relay.parts.store.create_key(KeySpec(name="db"))
        async with http.ws_connect(
            relay.realtime(), headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.receive_json()
            for _ in range(2):
                await ws.send_json({"type": "response.create"})
                while (event := await ws.receive_json())["type"] != "response.done":
                    pass
        async with asyncio.timeout(10):
            while relay.relay.sessions:
                await asyncio.sleep(0.01)
        await relay.relay.parts.writer.flush()
        store = relay.relay.parts.store
        [usage] = await store.usage(by="key")
        [session] = await store.sessions()
        assert usage.responses == 2
        assert usage.cost_usd > 0
        assert await store.spent_usd(record.id) == usage.cost_usd
        assert session.status == "completed"
        assert event["response"]["status"] == "completed"


async def test_a_budget_spent_through_one_relay_refuses_on_another_at_its_next_response(
    provider: MockProvider, store_url: str, redis_url: str
) -> None:
    """What one relay bills reaches the others over Redis (``gate/spend_feed.py``) in
    milliseconds, not at their next reload of the key's spend from the store (10 s)."""
    settings = mock_channel_settings(
        provider.url, store={"url": store_url}, redis={"url": redis_url}
    )
    store = await open_store(store_url)
    try:
        record, key = await store.create_key(
            KeySpec(name=f"budget-{secrets.token_hex(3)}", budget_usd=Decimal("0.000001"))
        )
    finally:
        await store.close()
    auth = {"Authorization": f"Bearer {key}"}
    async with (
        running_relay(settings) as a,
        running_relay(settings) as b,
        aiohttp.ClientSession() as http,
        http.ws_connect(b.realtime(), headers=auth) as on_b,
    ):
        await on_b.receive_json()  # session.created: B admitted the key, budget untouched
        async with http.ws_connect(a.realtime(), headers=auth) as on_a:
            await on_a.receive_json()
            await on_a.send_json({"type": "response.create"})
            while (await on_a.receive_json())["type"] != "response.done":
                pass
        # Well inside B's 10 s reload from the store: only the news can have told it.
        spend_b = b.relay.parts.spend
        async with asyncio.timeout(2):
            while spend_b.current(record.id) < Decimal("0.000001"):
                await asyncio.sleep(0.005)
        await on_b.send_json({"type": "response.create", "event_id": "evt_b"})
        error, code, _ = await read_error_and_close(on_b)  # on_budget_spent = "close"
    assert error is not None and error["error"]["code"] == "insufficient_quota"
    assert code == 4429
    assert not any(
        e.get("type") == "response.create" and e.get("event_id") == "evt_b"
        for e in provider.events_received
    )
