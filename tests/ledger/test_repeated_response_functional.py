"""A provider sends the same ``response.done`` twice: the client sees both, the key pays once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from rtrelay.ledger import KeySpec
from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, running_relay


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    options = MockOptions(realtime_pacing=0, reply_audio_ms=300, repeat_event="response.done")
    async with MockProvider(options) as p:
        yield p


async def test_a_response_done_sent_twice_through_the_relay_is_billed_once(
    provider: MockProvider,
) -> None:
    async with running_relay(mock_channel_settings(provider.url)) as relay:
        parts = relay.relay.parts
        key, secret = await parts.store.create_key(KeySpec(name="twice"))
        done: list[dict[str, Any]] = []
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(relay.realtime(), headers={"Authorization": f"Bearer {secret}"}) as ws,
        ):
            assert (await ws.receive_json(timeout=10))["type"] == "session.created"
            for _ in range(2):
                await ws.send_json({"type": "response.create"})
                while (event := await ws.receive_json(timeout=10))["type"] != "response.done":
                    pass
                done += [event, await ws.receive_json(timeout=10)]
        async with asyncio.timeout(10):
            while relay.relay.sessions:
                await asyncio.sleep(0.02)
        await parts.writer.flush()
        in_memory = parts.spend.current(key.id)
        stored = await parts.store.spent_usd(key.id)
        [usage] = await parts.store.usage(by="key")
        [session] = await parts.store.sessions()
    assert [e["type"] for e in done] == ["response.done"] * 4
    assert done[0] == done[1] and done[2] == done[3]  # what the client saw: each one twice
    once = sum(
        (
            PriceTable().cost("gpt-realtime", Usage.from_response_done(e["response"]))
            for e in done[::2]
        ),
        Decimal(0),
    )
    assert once > 0
    assert (usage.responses, session.responses) == (2, 2)
    assert stored == once
    assert in_memory == once  # the budget check's figure, not twice it
