"""GPT-Live on the simulated provider over a real socket, driven by the official SDK."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from typing import Any

import aiohttp
import orjson
import pytest
from mock_wire import expect_close, mock_process, next_event, open_session, speech_turn
from openai import AsyncOpenAI

from rtrelay.mock import MockOptions, MockProvider

FAST = MockOptions(realtime_pacing=0, live_usage_interval=0.3)
CHUNK = 100 * 48  # 100 ms of pcm16 at 24 kHz
START: dict[str, Any] = {"model": "gpt-live-1", "instructions": "Be brief."}


async def speak(connection: Any, pcm: bytes) -> None:
    for start in range(0, len(pcm), CHUNK):
        chunk = base64.b64encode(pcm[start : start + CHUNK]).decode()
        await connection.session.input_audio.append(audio=chunk)


async def test_sdk_live_session_start_audio_usage_and_close() -> None:
    async with MockProvider(FAST) as provider:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
        async with client.live.connect() as connection:
            await connection.session.start(session=START)
            started = await connection.recv()
            assert started.type == "session.started"
            assert started.session.model == "gpt-live-1"
            await speak(connection, speech_turn(1000, lead_ms=300, tail_ms=800))
            events = []
            async with asyncio.timeout(20):
                # Usage events arrive on their timer; read until one counts the reply too.
                while not (
                    events
                    and events[-1].type == "session.usage.updated"
                    and events[-1].usage.seconds >= 3.1
                ):
                    events.append(await connection.recv())
            await connection.session.close()
            closed = await connection.recv()
            rest = [event async for event in connection]  # ends cleanly: close 1000
    kinds = {e.type for e in events}
    assert {
        "session.input_transcript.delta",
        "session.output_transcript.delta",
        "session.output_audio.delta",
        "session.usage.updated",
    } <= kinds
    audio = b"".join(
        base64.b64decode(e.delta) for e in events if e.type == "session.output_audio.delta"
    )
    assert len(audio) == 1000 * 48
    usage = [e.usage.seconds for e in events if e.type == "session.usage.updated"]
    assert usage == sorted(usage)  # cumulative: never decreases
    assert usage[-1] == pytest.approx(3.1)  # 2.1 s heard + 1.0 s spoken
    assert closed.type == "session.closed"
    assert closed.reason == "close_requested"
    assert closed.usage.seconds == pytest.approx(3.1)
    assert rest == []
    [record] = provider.sessions
    assert (record.path, record.model) == ("/v1/live/sessions", "gpt-live-1")
    assert record.server_close_code == 1000
    [handshake] = provider.handshakes
    assert handshake.query == {}
    assert handshake.headers["Authorization"] == "Bearer sk-test"


async def test_sdk_delegated_response_and_session_update() -> None:
    delegation = {"type": "responses", "responses": {"model": "gpt-5.5"}}
    async with MockProvider(FAST) as provider:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
        async with client.live.connect() as connection:
            await connection.session.start(session={**START, "delegation": delegation})
            assert (await connection.recv()).type == "session.started"
            await connection.session.update(session={"triggers": []})
            updated = await connection.recv()
            await connection.response.create(event_id="r1")
            nested = []
            while not nested or nested[-1]["type"] != "response.completed":
                event = await connection.recv()
                assert event.type == "response.event"
                assert event.client_event_id == "r1"
                nested.append(event.event)
    assert updated.type == "session.updated"
    assert updated.session.triggers == []
    usage = nested[-1]["response"]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0


async def test_strict_session_start_error_in_the_live_shape(http: aiohttp.ClientSession) -> None:
    async with MockProvider(FAST) as provider:
        ws = await open_session(http, provider, "/live/sessions")
        start = {"type": "session.start", "event_id": "s1", "session": {**START, "voice": "x"}}
        await ws.send_str(orjson.dumps(start).decode())
        error = await next_event(ws)
        await ws.send_str(orjson.dumps({"type": "session.close"}).decode())
        not_started = await next_event(ws)
        await ws.close()
    assert error["type"] == "error"
    assert error["client_event_id"] == "s1"
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "unknown_parameter",
        "message": "Unknown parameter: 'session.voice'.",
        "param": "session.voice",
        "client_event_id": "s1",
    }
    assert not_started["error"]["code"] == "session_not_started"


async def test_live_model_on_realtime_is_invalid_model_then_3000() -> None:
    async with MockProvider(FAST) as provider:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
        async with client.realtime.connect(model="gpt-live-1") as connection:
            error = await connection.recv()
            with pytest.raises(Exception, match="3000"):
                await connection.recv()
    assert error.type == "error"
    assert error.error.code == "invalid_model"
    assert "/v1/live/sessions" in error.error.message
    assert provider.sessions[0].server_close_code == 3000


async def test_live_transcription_model_is_a_realtime_model(http: aiohttp.ClientSession) -> None:
    async with MockProvider(FAST) as provider:
        ws = await open_session(http, provider, "/realtime?model=gpt-live-transcribe")
        created = await next_event(ws)
        await ws.close()
    assert created["type"] == "session.created"


async def test_bad_key_gets_a_live_error_then_3000(http: aiohttp.ClientSession) -> None:
    options = dataclasses.replace(FAST, api_keys=frozenset({"sk-right"}))
    async with MockProvider(options) as provider:
        ws = await open_session(
            http, provider, "/live/sessions", headers={"Authorization": "Bearer sk-wrong-123456"}
        )
        events = await expect_close(ws, 3000, "invalid_request_error.invalid_api_key")
    [error] = events
    assert error["error"]["code"] == "invalid_api_key"
    assert "client_event_id" in error["error"]
    assert "event_id" not in error["error"]


async def test_rtrelay_mock_prints_and_serves_the_live_and_translation_urls(
    http: aiohttp.ClientSession,
) -> None:
    async with mock_process("--pacing", "0") as (process, _):
        assert process.stdout is not None
        async with asyncio.timeout(10):
            lines = [(await process.stdout.readline()).decode() for _ in range(3)]
        live = lines[1].split()[1]
        translation = lines[2].split()[1]
        async with http.ws_connect(live) as ws:
            start = {"type": "session.start", "session": START}
            await ws.send_str(orjson.dumps(start).decode())
            started = await next_event(ws)
        async with http.ws_connect(translation) as ws:
            created = await next_event(ws)
    assert live.endswith("/v1/live/sessions")
    assert started["type"] == "session.started"
    assert created["session"]["model"] == "gpt-realtime-translate"


async def test_an_expired_live_session_gets_session_closed_then_1001(
    http: aiohttp.ClientSession,
) -> None:
    options = dataclasses.replace(FAST, max_session_seconds=0.5, no_usage_events=True)
    async with MockProvider(options) as provider:
        ws = await open_session(http, provider, "/live/sessions")
        await ws.send_str(orjson.dumps({"type": "session.start", "session": START}).decode())
        events = await expect_close(ws, 1001)
    assert [e["type"] for e in events] == ["session.started", "session.closed"]
    assert events[1]["reason"] == "expired"
    assert events[1]["usage"] == {"seconds": 0.0}


async def test_live_delegate_turns_option_reaches_websocket_sessions() -> None:
    delegation = {"type": "responses", "responses": {"model": "gpt-5.5"}}
    async with MockProvider(dataclasses.replace(FAST, live_delegate_turns=True)) as provider:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
        async with client.live.connect() as connection:
            await connection.session.start(session={**START, "delegation": delegation})
            await speak(connection, speech_turn(1000, lead_ms=300, tail_ms=800))
            kinds = []
            async with asyncio.timeout(20):
                while "response.event" not in kinds:
                    kinds.append((await connection.recv()).type)
    assert kinds.index("session.delegation.created") < kinds.index("response.event")
