"""A relay killed during a GPT-Live WebRTC session: its restart hangs the session up at
the provider (on the Live route: ``/live/sessions/{id}/hangup``), and the ledger keeps
what was metered before the kill."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import orjson
import pytest
from live_rtc_rig import FAST, SESSION

from rtc_helpers import RtcClient
from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.store import open_store
from rtrelay.mock import MockProvider
from rtrelay.mock._audio import silence_pcm16, speech_pcm16
from rtrelay.wire import LIVE_SESSIONS_PATH
from support import serve_process, write_config

pytestmark = pytest.mark.timeout(90)


async def test_sigkill_during_a_live_session_hangs_it_up_at_restart(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        _, key = await store.create_key(KeySpec(name="crash"))
    finally:
        await store.close()

    async with MockProvider(FAST) as provider:
        config = write_config(tmp_path / "r.toml", provider.url, db, auth="keys")
        text = config.read_text().replace('["gpt-realtime"]', '["gpt-realtime", "gpt-live-1"]')
        config.write_text(text)
        async with (
            serve_process("--config", str(config)) as (proc, port),
            aiohttp.ClientSession() as http,
            RtcClient() as client,
        ):
            offer = await client.offer()
            body = {"session": SESSION, "transport": {"type": "webrtc", "sdp": offer}}
            url = f"http://127.0.0.1:{port}{LIVE_SESSIONS_PATH}"
            headers = {"Authorization": f"Bearer {key}"}
            async with http.post(url, json=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                answer = orjson.loads(await resp.read())
            await client.answer(answer["transport"]["sdp"])
            await client.next_event("session.started")
            client.speak(silence_pcm16(200) + speech_pcm16(600) + silence_pcm16(600))
            store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
            try:
                async with asyncio.timeout(15):
                    while not await store.usage(by="key"):
                        await asyncio.sleep(0.05)
            finally:
                await store.close()
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
            live = provider.calls[-1]
            await asyncio.sleep(0.3)
            assert not live.ended.is_set()  # orphaned: no one meters it now
            async with serve_process("--config", str(config), port=port):
                async with asyncio.timeout(10):
                    await live.ended.wait()
                assert live.end_reason == "hangup"
                store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
                try:
                    [session] = await store.sessions()
                    [usage] = await store.usage(by="key")
                    record = await store.find_call(answer["session"]["id"])
                finally:
                    await store.close()
    assert session.status == "interrupted"
    assert session.transport == "webrtc"
    assert usage.cost_usd > 0
    assert record is not None and record.state == "ended"
