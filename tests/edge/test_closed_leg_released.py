"""A session the relay closes is freed when it ends, not a heartbeat later.

Found by the soak (``rtrelay bench --soak``): RSS grew ~2 MB per 1,000 sessions because
every session the provider or the relay ended kept its client WebSocket, request,
connection handler and parser buffers alive for heartbeat + heartbeat/2 seconds (30 s
by default): aiohttp 3.14 re-arms the heartbeat timer for data that arrives after
``close()`` has begun (the client's close reply), and the timer holds the response.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import aiohttp
import pytest

from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, running_relay


@pytest.mark.parametrize(
    ("closer", "mock", "timeouts", "code"),
    [
        # the provider closes after session.created and the answer to one event
        ("provider", {"close_after_events": 2, "close_code": 4000}, {}, 4000),
        # the relay closes an idle session (idle_timeout, 1000)
        ("relay", {}, {"idle": 0.3}, 1000),
    ],
)
async def test_a_session_closed_by_the_server_side_frees_its_client_leg(
    closer: str, mock: dict[str, Any], timeouts: dict[str, float], code: int
) -> None:
    options = MockOptions(realtime_pacing=0, **mock)
    async with MockProvider(options) as provider:
        settings = mock_channel_settings(
            provider.url, auth="none", timeouts={"heartbeat": 20, **timeouts}
        )
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                assert (await ws.receive_json())["type"] == "session.created"
                (info,) = relay.relay.sessions.values()
                leg = weakref.ref(info.bridge.client)
                del info
                if closer == "provider":
                    await ws.send_json({"type": "soak.probe"})  # answered: event 2, then close
                async with asyncio.timeout(10):
                    while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                        pass
                assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, code)
            async with asyncio.timeout(10):
                while relay.relay.sessions:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # closed transports finish their callbacks
            gc.collect()
            assert leg() is None, "the closed client leg is still referenced"
