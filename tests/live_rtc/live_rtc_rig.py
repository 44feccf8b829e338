"""What the GPT-Live WebRTC tests share: a relay in front of the simulated provider, keys,
an aiortc "browser" that creates a Live session (the rig and ``settled`` are the WebRTC
call tests')."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from openai import AsyncOpenAI

from calls.calls_rig import Rig, settled
from rtc_helpers import RtcClient
from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.wire import LIVE_SESSIONS_PATH
from support import running_relay, settings_for

__all__ = ["FAST", "SESSION", "Rig", "create", "live_rig", "new_key", "sdk", "settled"]

FAST = MockOptions(realtime_pacing=0, reply_audio_ms=400, live_usage_interval=0.3)
SESSION: dict[str, Any] = {"model": "gpt-live-1", "instructions": "Be brief."}


async def new_key(rig: Rig, **spec: Any) -> str:
    _, secret = await rig.relay.relay.parts.store.create_key(KeySpec(name="live", **spec))
    return secret


@contextlib.asynccontextmanager
async def live_rig(options: MockOptions = FAST, **sections: Any) -> AsyncIterator[Rig]:
    async with MockProvider(options) as provider:
        channel = {
            "name": "sim",
            "kind": "openai",
            "base_url": provider.url,
            "api_key_env": "TEST_PROVIDER_KEY",
            "models": ["gpt-realtime", "gpt-live-1"],
        }
        settings = settings_for(channels=[channel], auth={"mode": "keys"}, **sections)
        async with running_relay(settings) as relay:
            _, key = await relay.relay.parts.store.create_key(KeySpec(name="owner"))
            yield Rig(provider, relay, key)


def sdk(rig: Rig, key: str) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=key,
        base_url=rig.relay.url + "/v1",
        websocket_base_url=rig.relay.ws_url + "/v1",
        max_retries=0,
    )


async def create(
    client: RtcClient,
    http: aiohttp.ClientSession,
    rig: Rig,
    key: str,
    session: dict[str, Any] | None = None,
) -> int:
    """POST a Live session as a page's server does (the SDK's JSON shape); on success apply
    the answer and wait for ``session.started`` on the data channel. The status."""
    body = {
        "session": SESSION if session is None else session,
        "transport": {"type": "webrtc", "sdp": await client.offer()},
    }
    headers = {"Authorization": f"Bearer {key}"}
    url = rig.relay.url + LIVE_SESSIONS_PATH
    async with http.post(url, json=body, headers=headers) as response:
        client.status = response.status
        client.headers = response.headers.copy()
        client.body = await response.text()
    if client.status < 300:
        await client.answer(orjson.loads(client.body)["transport"]["sdp"])
        await client.next_event("session.started")
    return client.status
