"""A relay killed during a call: its restart hangs the call up, and the ledger is right.

The relay's metering sideband dies with the process (SIGKILL: no hangup, no settle),
so the provider's call would run on unmetered. The next start of the same node finds
the call live in the registry and hangs it up at the provider.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from rtc_helpers import RtcClient
from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.store import open_store
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.wire import CALLS_PATH
from support import serve_process, write_config

pytestmark = pytest.mark.timeout(90)


async def test_sigkill_during_a_call_hangs_it_up_at_restart_and_keeps_its_usage(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.db"
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        _, key = await store.create_key(KeySpec(name="crash"))
    finally:
        await store.close()
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=300)) as provider:
        config = write_config(tmp_path / "r.toml", provider.url, db, auth="keys")
        async with (
            serve_process("--config", str(config)) as (proc, port),
            aiohttp.ClientSession() as http,
            RtcClient() as client,
        ):
            url = f"http://127.0.0.1:{port}{CALLS_PATH}"
            await client.start(http, url, api_key=key, model="gpt-realtime")
            client.send({"type": "response.create"})
            await client.next_event("response.done")
            store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
            try:
                async with asyncio.timeout(10):
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
                    record = await store.find_call(client.call_id)
                finally:
                    await store.close()
    assert session.status == "interrupted"
    assert session.transport == "webrtc"
    assert usage.responses == 1
    assert record is not None and record.state == "ended"
