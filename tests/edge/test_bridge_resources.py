"""The bridge never grows memory for a slow client and leaves nothing behind."""

from __future__ import annotations

import asyncio
import gc

import aiohttp
import orjson
import psutil

from support import mock_channel_settings, running_relay, scripted_upstream, settings_for


async def test_client_that_stops_reading_is_closed_1008_and_memory_stays_bounded() -> None:
    frames, size = 3000, 32_000  # ~96 MB offered by the provider
    async with scripted_upstream() as up:
        settings = settings_for(up.url, timeouts={"slow_consumer": 0.5, "idle": 60})
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            ws = await http.ws_connect(relay.realtime(), max_msg_size=0)
            await ws.receive()
            await ws.send_json({"type": "x.stream", "n": frames, "size": size})
            # Never read until the relay gives up on us: it frees the provider first.
            await up_closed(up)
            assert up.closes == [(1001, "relay closed")]
            received = 0
            error, code, reason = None, None, ""
            async with asyncio.timeout(30):
                while True:
                    msg = await ws.receive()
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        if '"type":"error"' in msg.data:
                            error = orjson.loads(msg.data)
                        else:
                            received += len(msg.data)
                    else:
                        code, reason = ws.close_code, msg.extra or ""
                        break
            await ws.close()
        await relay.relay.parts.writer.flush()
    assert error is not None and error["error"]["code"] == "slow_consumer", (code, reason, received)
    assert (code, reason) == (1008, "server_error.slow_consumer")
    # Backpressure held the provider back: only socket buffers' worth got through.
    assert 0 < received < 16 * 1024 * 1024


async def up_closed(up) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10):
        while not up.closes:
            await asyncio.sleep(0.01)


async def test_no_task_or_descriptor_leaks_after_200_sessions_ended_by_each_side() -> None:
    from rtrelay.mock import MockOptions, MockProvider

    process = psutil.Process()
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        settings = mock_channel_settings(provider.url, auth="none")
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:

            async def client_ends() -> None:
                async with http.ws_connect(relay.realtime()) as ws:
                    await ws.receive()
                    await ws.close(code=1000)

            async def provider_ends() -> None:
                async with http.ws_connect(relay.realtime()) as ws:
                    await ws.receive()
                    msg = await ws.receive()
                    assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 4000)

            await client_ends()  # warm up pools and lazy imports
            await _settle(relay)
            tasks_before = len(asyncio.all_tasks())
            fds_before = process.num_fds()

            for _ in range(10):
                await asyncio.gather(*(client_ends() for _ in range(20)))
            provider.options = MockOptions(
                realtime_pacing=0, close_after_events=1, close_code=4000, close_reason="bye"
            )
            for _ in range(10):
                await asyncio.gather(*(provider_ends() for _ in range(20)))
            await _settle(relay)
            gc.collect()
            assert len(asyncio.all_tasks()) == tasks_before
            assert process.num_fds() <= fds_before
            assert len(provider.sessions) >= 401


async def _settle(relay) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10):
        while relay.relay.sessions:
            await asyncio.sleep(0.01)
    await relay.relay.parts.writer.flush()
    await asyncio.sleep(0.2)  # let closed transports finish their callbacks
