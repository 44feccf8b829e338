"""A relay killed during a call: its restart hangs the call up, and the ledger is right.

The relay's metering sideband dies with the process (SIGKILL: no hangup, no settle),
so the provider's call would run on unmetered. The next start of the same node finds
the call live in the registry and hangs it up at the provider, on the call's own route
(a Realtime call's ``/realtime/calls/{id}/hangup``, a GPT-Live session's
``/live/sessions/{id}/hangup``).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from rtc_helpers import RtcClient
from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.store import open_store
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.mock._audio import silence_pcm16, speech_pcm16
from rtrelay.wire import CALLS_PATH, LIVE_SESSIONS_PATH
from support import serve_process, write_config

pytestmark = pytest.mark.timeout(90)

Open = Callable[[aiohttp.ClientSession, RtcClient, str, str], Awaitable[str]]


async def realtime_call(http: aiohttp.ClientSession, client: RtcClient, base: str, key: str) -> str:
    """A Realtime call with one response; its relay id."""
    await client.start(http, base + CALLS_PATH, api_key=key, model="gpt-realtime")
    client.send({"type": "response.create"})
    await client.next_event("response.done")
    return client.call_id


async def live_session(http: aiohttp.ClientSession, client: RtcClient, base: str, key: str) -> str:
    """A GPT-Live WebRTC session that hears some speech (usage reports follow); its relay id."""
    transport = {"type": "webrtc", "sdp": await client.offer()}
    body = {"session": {"model": "gpt-live-1"}, "transport": transport}
    headers = {"Authorization": f"Bearer {key}"}
    async with http.post(base + LIVE_SESSIONS_PATH, json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        answer = orjson.loads(await resp.read())
    await client.answer(answer["transport"]["sdp"])
    await client.next_event("session.started")
    client.speak(silence_pcm16(200) + speech_pcm16(600) + silence_pcm16(600))
    relay_id: str = answer["session"]["id"]
    return relay_id


@pytest.mark.parametrize("open_call", [realtime_call, live_session], ids=["realtime", "live"])
async def test_sigkill_during_a_call_hangs_it_up_at_restart_and_keeps_its_usage(
    tmp_path: Path, open_call: Open
) -> None:
    db = tmp_path / "r.db"
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        _, key = await store.create_key(KeySpec(name="crash"))
    finally:
        await store.close()
    options = MockOptions(realtime_pacing=0, reply_audio_ms=300, live_usage_interval=0.3)
    async with MockProvider(options) as provider:
        config = write_config(tmp_path / "r.toml", provider.url, db, auth="keys")
        text = config.read_text().replace('["gpt-realtime"]', '["gpt-realtime", "gpt-live-1"]')
        config.write_text(text)
        async with (
            serve_process("--config", str(config)) as (proc, port),
            aiohttp.ClientSession() as http,
            RtcClient() as client,
        ):
            call_id = await open_call(http, client, f"http://127.0.0.1:{port}", key)
            store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
            try:
                async with asyncio.timeout(15):
                    while not await store.usage(by="key"):
                        await asyncio.sleep(0.05)
            finally:
                await store.close()
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
            call = provider.calls[-1]
            await asyncio.sleep(0.3)
            assert not call.ended.is_set()  # orphaned: no one meters it now
            async with serve_process("--config", str(config), port=port):
                async with asyncio.timeout(10):
                    await call.ended.wait()
                assert call.end_reason == "hangup"
                store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
                try:
                    [session] = await store.sessions()
                    [usage] = await store.usage(by="key")
                    record = await store.find_call(call_id)
                finally:
                    await store.close()
    assert session.status == "interrupted"
    assert session.transport == "webrtc"
    assert usage.cost_usd > 0
    if open_call is realtime_call:
        assert usage.responses == 1
    assert record is not None and record.state == "ended"
