"""``rtrelay serve`` as a real process: SIGTERM drains, SIGKILL loses no completed response."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.store import open_store
from rtrelay.mock import MockOptions, MockProvider
from support import read_error_and_close, serve_process, upgrade_headers


def write_config(path: Path, provider_url: str, db: Path, *, auth: str, drain: float) -> Path:
    path.write_text(
        f"""
[auth]
mode = "{auth}"
[timeouts]
drain = {drain}
[store]
url = "sqlite+aiosqlite:///{db}"
[logging]
level = "WARNING"
[[channels]]
name = "sim"
kind = "openai"
base_url = "{provider_url}"
models = ["gpt-realtime"]
"""
    )
    return path


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=300)) as p:
        yield p


async def test_sigterm_refuses_new_sessions_then_ends_live_ones_after_the_drain_window(
    provider: MockProvider, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "r.toml", provider.url, tmp_path / "r.db", auth="none", drain=1.5
    )
    async with (
        serve_process("--config", str(config)) as (proc, port),
        aiohttp.ClientSession() as http,
    ):
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        async with http.ws_connect(url) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 503
            async with http.get(url.replace("ws:", "http:"), headers=upgrade_headers()) as resp:
                assert resp.status == 503
                assert (await resp.json())["error"]["code"] == "relay_shutting_down"
            # the live session still works during the drain window
            await ws.send_json({"type": "response.create"})
            while (await ws.receive_json())["type"] != "response.done":
                pass
            error, code, reason = await read_error_and_close(ws)
        assert error is not None
        assert error["error"]["code"] == "relay_shutting_down"
        assert (code, reason) == (1001, "server_error.relay_shutting_down")
        async with asyncio.timeout(20):
            assert await proc.wait() == 0


async def test_sigkill_mid_session_keeps_completed_responses_and_marks_it_interrupted(
    provider: MockProvider, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        _, key = await store.create_key(KeySpec(name="crash"))
    finally:
        await store.close()
    config = write_config(tmp_path / "r.toml", provider.url, db, auth="keys", drain=1)
    async with (
        serve_process("--config", str(config)) as (proc, port),
        aiohttp.ClientSession() as http,
    ):
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {key}"})
        await ws.receive_json()
        for _ in range(2):
            await ws.send_json({"type": "response.create"})
            while (await ws.receive_json())["type"] != "response.done":
                pass
        store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
        try:
            async with asyncio.timeout(10):
                while (await store.usage(by="key"))[0:1] == [] or (
                    (await store.usage(by="key"))[0].responses < 2
                ):
                    await asyncio.sleep(0.05)
        finally:
            await store.close()
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await ws.close()
    async with serve_process("--config", str(config), port=port):
        store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
        try:
            [session] = await store.sessions()
            [usage] = await store.usage(by="key")
        finally:
            await store.close()
    assert session.status == "interrupted"
    assert usage.responses == 2
    assert usage.cost_usd > 0
