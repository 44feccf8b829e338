"""Budgets hold mid-session whoever starts the billable work, whatever the spelling.

Real relay, real simulated provider (server VAD on, as OpenAI's default), real SQLite.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider, silence_pcm16, speech_pcm16
from support import RunningRelay, mock_channel_settings, read_error_and_close, running_relay

TINY = Decimal("0.000001")  # the first response crosses it

SPELLINGS = [
    b'{"type":"response\\u002ecreate"}',
    b'{"type":"input_audio_buffer.append","type":"response.create"}',
    b'{"type":"input_audio_buffer.append","audio":"'
    + b"QUFB" * 4096
    + b'","type":"response.create"}',
    b'{ "event_id" : "e1",\n "type" :\t"response.create" }',
    b'{"t\\u0079pe":"response.create"}',
    b'{"type":"response.create","TYPE":"input_audio_buffer.append"}',
]


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    # Real-time pacing: a response lasts 1.5 s, long enough to be cancelled mid-stream.
    async with MockProvider(MockOptions(realtime_pacing=1.0, reply_audio_ms=1500)) as p:
        yield p


async def relay_with(provider: MockProvider, on_spent: str) -> Any:
    settings = mock_channel_settings(provider.url, limits={"on_budget_spent": on_spent})
    return running_relay(settings)


async def make_key(relay: RunningRelay, budget: Decimal) -> str:
    _, secret = await relay.relay.parts.store.create_key(KeySpec(name="t", budget_usd=budget))
    return secret


def ledger(relay: RunningRelay) -> list[tuple[str, str]]:
    """(response id, status) of every response row, in the order written."""
    path = relay.relay.settings.store.url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT ref, status FROM rtrelay_usage WHERE kind = 'response' ORDER BY id"
        ).fetchall()
    return [(str(ref), str(status)) for ref, status in rows]


async def speak(ws: aiohttp.ClientWebSocketResponse[Any]) -> None:
    """One spoken turn: server VAD ends it and the provider starts a response itself."""
    audio = speech_pcm16(600) + silence_pcm16(800)
    for i in range(0, len(audio), 4800):
        chunk = base64.b64encode(audio[i : i + 4800]).decode()
        await ws.send_json({"type": "input_audio_buffer.append", "audio": chunk})


async def until(ws: aiohttp.ClientWebSocketResponse[Any], kind: str) -> list[dict[str, Any]]:
    """Events up to and including the next one of ``kind``."""
    seen = []
    while True:
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        event = orjson.loads(msg.data)
        seen.append(event)
        if event["type"] == kind:
            return seen


async def test_server_vad_response_that_crosses_the_budget_closes_the_session_4429(
    provider: MockProvider,
) -> None:
    async with await relay_with(provider, "close") as relay, aiohttp.ClientSession() as http:
        key = await make_key(relay, TINY)
        async with http.ws_connect(
            relay.realtime(), headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.receive()
            await speak(ws)  # no response.create: the provider starts the response
            events = await until(ws, "response.done")
            assert events[-1]["response"]["status"] == "completed"
            await speak(ws)  # a client still streaming audio gets no further response
            error, code, reason = await read_error_and_close(ws)
        await relay.relay.parts.writer.flush()
        rows = ledger(relay)
    assert error is not None and error["error"]["code"] == "insufficient_quota"
    assert (code, reason) == (4429, "insufficient_quota.insufficient_quota")
    assert [status for _, status in rows] == ["completed"]
    assert not any(e.get("type") == "response.create" for e in provider.events_received)


async def test_keep_open_cancels_every_response_the_provider_starts_after_the_budget(
    provider: MockProvider,
) -> None:
    async with await relay_with(provider, "keep_open") as relay, aiohttp.ClientSession() as http:
        key = await make_key(relay, TINY)
        async with http.ws_connect(
            relay.realtime(), headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.receive()
            await speak(ws)
            first = await until(ws, "response.done")
            assert first[-1]["response"]["status"] == "completed"
            for _ in range(2):
                await speak(ws)
                events = await until(ws, "response.done")
                kinds = [e["type"] for e in events]
                assert "response.created" in kinds
                errors = [e for e in events if e["type"] == "error"]
                assert [e["error"]["code"] for e in errors] == ["insufficient_quota"]
                assert events[-1]["response"]["status"] == "cancelled"
            await ws.send_json({"type": "response.create", "event_id": "evt_late"})
            refused = await until(ws, "error")
            assert refused[-1]["error"]["code"] == "insufficient_quota"
            assert refused[-1]["error"]["event_id"] == "evt_late"
            await ws.close()
            assert ws.close_code == 1000  # keep_open: the session was never ended by the relay
        await relay.relay.parts.writer.flush()
        rows = ledger(relay)
    assert [status for _, status in rows] == ["completed", "cancelled", "cancelled"]
    cancels = [e for e in provider.events_received if e.get("type") == "response.cancel"]
    assert len(cancels) == 2
    assert not any(e.get("type") == "response.create" for e in provider.events_received)


async def test_no_spelling_of_response_create_gets_past_a_spent_budget(
    provider: MockProvider,
) -> None:
    provider.options = MockOptions(realtime_pacing=0, reply_audio_ms=200)
    async with await relay_with(provider, "keep_open") as relay, aiohttp.ClientSession() as http:
        key = await make_key(relay, TINY)
        async with http.ws_connect(
            relay.realtime(), headers={"Authorization": f"Bearer {key}"}, max_msg_size=0
        ) as ws:
            await ws.receive()
            await ws.send_json({"type": "response.create"})
            await until(ws, "response.done")
            spent = relay.relay.parts.spend.current(relay_key_id(relay))
            for raw in SPELLINGS:
                await ws.send_bytes(raw)  # binary frames are no side door either
                await ws.send_str(raw.decode())
            answers = [await until(ws, "error") for _ in range(2 * len(SPELLINGS))]
            await ws.close()
        await relay.relay.parts.writer.flush()
        rows = ledger(relay)
    codes = {a[-1]["error"]["code"] for a in answers}
    assert codes <= {"insufficient_quota", "invalid_event"}
    assert all(len(a) == 1 for a in answers)  # nothing but the refusal came back
    creates = [e for e in provider.events_received if e.get("type") == "response.create"]
    assert len(creates) == 1
    assert len(rows) == 1
    assert relay.relay.parts.spend.current(relay_key_id(relay)) == spent


def relay_key_id(relay: RunningRelay) -> str:
    path = relay.relay.settings.store.url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        (key_id,) = db.execute("SELECT id FROM rtrelay_api_keys").fetchone()
    return str(key_id)
