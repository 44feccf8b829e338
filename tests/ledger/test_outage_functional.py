"""A 30 s PostgreSQL outage under ``rtrelay serve``: every response the clients saw is billed.

The relay runs as a real process on a database of its own, reached through a
TCP proxy the test cuts (the shared PostgreSQL keeps serving other tests). Twenty
sessions complete responses while the database is gone; the relay journals the
records, and either replays them when the database answers again, or, killed
with SIGKILL during the outage, replays its journal when it starts again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from outages import proxied
from rtrelay.ledger import KeySpec, open_store
from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.mock import MockOptions, MockProvider
from store_fixtures import postgres_database
from support import free_port, serve_process

OUTAGE_S = 30.0
SESSIONS = 20
RESPONSES_EACH = 2


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=200)) as p:
        yield p


def write_config(path: Path, provider_url: str, store_url: str, journal: Path) -> Path:
    path.write_text(
        f"""
[auth]
mode = "keys"
[store]
url = "{store_url}"
journal = "{journal}"
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


async def converse(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Ask for responses; the ``response.done`` events this client saw."""
    done = []
    for _ in range(RESPONSES_EACH):
        await ws.send_json({"type": "response.create"})
        while (event := await ws.receive_json(timeout=10))["type"] != "response.done":
            pass
        done.append(event)
    return done


def journaled(journal: Path, kind: str) -> int:
    if not journal.exists():
        return 0
    return journal.read_bytes().count(f'"kind":"{kind}"'.encode())


async def metric(http: aiohttp.ClientSession, port: int, fate: str) -> float:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    series = f'rtrelay_ledger_records_total{{fate="{fate}"}} '
    [line] = [line for line in text.splitlines() if line.startswith(series)]
    return float(line.split()[-1])


@pytest.mark.postgres
@pytest.mark.parametrize("kill", [False, True], ids=["recovers", "sigkilled"])
async def test_responses_completed_during_a_30_s_outage_are_all_billed(
    kill: bool, provider: MockProvider, postgres_admin_url: str, tmp_path: Path
) -> None:
    journal = tmp_path / "ledger.jsonl"
    with postgres_database(postgres_admin_url) as direct:
        store = await open_store(direct)
        try:
            key, secret = await store.create_key(KeySpec(name="outage"))
        finally:
            await store.close()
        async with proxied(direct) as (proxy, through_proxy):
            config = write_config(tmp_path / "r.toml", provider.url, through_proxy, journal)
            port = free_port()
            url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
            auth = {"Authorization": f"Bearer {secret}"}
            async with (
                serve_process("--config", str(config), port=port) as (proc, _),
                aiohttp.ClientSession() as http,
            ):
                sockets = [await http.ws_connect(url, headers=auth) for _ in range(SESSIONS)]
                for ws in sockets:
                    assert (await ws.receive_json(timeout=10))["type"] == "session.created"
                cut_at = time.monotonic()
                proxy.cut()
                done = [e for seen in await asyncio.gather(*map(converse, sockets)) for e in seen]
                for ws in sockets:
                    await ws.close()
                async with asyncio.timeout(20):  # on disk, fsync'd, before any kill
                    while (
                        journaled(journal, "ResponseRecord") < len(done)
                        or journaled(journal, "SessionEnd") < SESSIONS
                    ):
                        await asyncio.sleep(0.1)
                if kill:
                    os.kill(proc.pid, signal.SIGKILL)
                    await proc.wait()
                await asyncio.sleep(max(0.0, cut_at + OUTAGE_S - time.monotonic()))
                proxy.restore()
                if not kill:
                    async with asyncio.timeout(30):
                        while await metric(http, port, "replayed") < len(done) + SESSIONS:
                            await asyncio.sleep(0.2)
                    assert await metric(http, port, "journaled") >= len(done) + SESSIONS
                    assert await metric(http, port, "dropped") == 0
                    proc.send_signal(signal.SIGTERM)  # a clean stop removes the empty journal
                    async with asyncio.timeout(20):
                        assert await proc.wait() == 0
            if kill:  # the next start replays what the dead process journaled
                async with serve_process("--config", str(config), port=port):
                    pass
        store = await open_store(direct, migrate=False)
        try:
            [usage] = await store.usage(by="key")
            spent = await store.spent_usd(key.id)
            sessions = await store.sessions()
        finally:
            await store.close()
    prices = PriceTable()
    cost = sum(
        (prices.cost("gpt-realtime", Usage.from_response_done(e["response"])) for e in done),
        Decimal(0),
    )
    assert len(done) == SESSIONS * RESPONSES_EACH
    assert len({e["response"]["id"] for e in done}) == len(done)
    assert usage.responses == len(done)
    assert spent == cost > 0
    assert sorted(s.status for s in sessions) == ["completed"] * SESSIONS
    assert not journal.exists()
