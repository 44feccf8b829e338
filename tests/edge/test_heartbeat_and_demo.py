"""Heartbeats find a silent client; ``rtrelay serve --demo`` works with nothing set up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from support import demo_process, running_relay, scripted_upstream, settings_for


async def test_a_client_that_stops_answering_pings_is_dropped_and_the_provider_leg_closed() -> None:
    async with scripted_upstream() as up:
        settings = settings_for(up.url, timeouts={"heartbeat": 0.2, "idle": 60})
        async with running_relay(settings) as relay:
            port = int(relay.url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\n"
                b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            # Never answer a ping: the relay must notice and let the provider go.
            async with asyncio.timeout(10):
                while not up.closes:
                    await asyncio.sleep(0.02)
            writer.close()
    assert up.closes == [(1001, "client disconnected")]


async def test_demo_starts_with_nothing_configured_and_its_key_works(tmp_path: Path) -> None:
    async with demo_process(cwd=tmp_path) as demo:
        text = demo.banner
        assert f"ws://127.0.0.1:{demo.port}/v1/realtime?model=gpt-realtime" in text
        assert "AsyncOpenAI" in text
        assert "new WebSocket" in text
        assert "RTCPeerConnection" in text
        url = f"ws://127.0.0.1:{demo.port}/v1/realtime?model=gpt-realtime"
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(url, headers={"Authorization": f"Bearer {demo.key}"}) as ws,
        ):
            assert (await ws.receive_json())["type"] == "session.created"
        assert (tmp_path / "rtrelay.db").exists()  # the default store every command uses
    assert demo.process.returncode == 0
