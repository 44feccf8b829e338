"""A first end-to-end session over a real socket: connect, respond, close."""

from __future__ import annotations

import aiohttp

from rtrelay.mock import MockProvider


async def test_response_create_streams_a_full_response(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(
        provider.url + "/realtime?model=gpt-realtime",
        headers={"Authorization": "Bearer sk-test"},
        protocols=("realtime",),
    ) as ws:
        assert ws.protocol == "realtime"
        created = await ws.receive_json()
        assert created["type"] == "session.created"
        await ws.send_json({"type": "response.create"})
        types = []
        while not types or types[-1] != "response.done":
            types.append((await ws.receive_json())["type"])
    assert types[0] == "response.created"
    assert "response.output_audio.delta" in types
    await provider.wait_idle()
    assert provider.active_sessions == 0
    assert provider.events_received == [{"type": "response.create"}]
