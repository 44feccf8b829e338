"""Whole sessions over real sockets with an aiohttp client."""

from __future__ import annotations

import asyncio
import base64
import math

import aiohttp
import orjson
import pytest
from mock_wire import (
    append_events,
    events_until,
    next_event,
    open_session,
    send_all,
    speech_turn,
    types,
)

from rtrelay.mock import MockOptions, MockProvider, speech_pcm16


async def test_full_server_vad_turn_with_honest_usage(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    async with await open_session(http, provider) as ws:
        created = await next_event(ws)
        assert created["type"] == "session.created"
        instructions = "Reply briefly."
        await send_all(
            ws,
            [
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "instructions": instructions},
                }
            ],
        )
        assert (await next_event(ws))["type"] == "session.updated"
        await send_all(ws, append_events(speech_turn(1000, lead_ms=300, tail_ms=800)))
        events = await events_until(ws, "response.done")

    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert types(events).index("input_audio_buffer.committed") > types(events).index(
        "input_audio_buffer.speech_stopped"
    )
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert len(audio) == 1000 * 48  # the default 1 s reply, pcm16 at 24 kHz
    transcript = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    usage = events[-1]["response"]["usage"]
    user_ms = stopped["audio_end_ms"] - started["audio_start_ms"]
    assert usage["input_token_details"]["audio_tokens"] == math.ceil(user_ms / 100)
    assert usage["input_token_details"]["text_tokens"] == math.ceil(len(instructions) / 4)
    assert usage["output_token_details"]["audio_tokens"] == len(audio) // 48 // 50
    assert usage["output_token_details"]["text_tokens"] == math.ceil(
        len(transcript["transcript"]) / 4
    )
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    # What reached the provider is exactly what was sent, in order.
    sent = provider.events_received
    assert sent[0]["type"] == "session.update"
    assert b"".join(base64.b64decode(e["audio"]) for e in sent[1:]) == speech_turn(
        1000, lead_ms=300, tail_ms=800
    )


async def test_every_frame_stays_under_1_mib_even_with_huge_chunks_and_appends(
    http: aiohttp.ClientSession,
) -> None:
    options = MockOptions(realtime_pacing=0, reply_audio_ms=10_000, audio_chunk_ms=10_000)
    async with MockProvider(options) as provider, await open_session(http, provider) as ws:
        await next_event(ws)
        big = base64.b64encode(bytes(48 * 60_000)).decode()  # a minute of silence, 3.8 MB
        await send_all(ws, [{"type": "input_audio_buffer.append", "audio": big}])
        await send_all(ws, [{"type": "response.create"}])
        sizes = []
        async with asyncio.timeout(10):
            while True:
                message = await ws.receive()
                assert message.type is aiohttp.WSMsgType.TEXT
                sizes.append(len(message.data.encode()))
                if orjson.loads(message.data)["type"] == "response.done":
                    break
    assert max(sizes) > 600_000  # the 10 s chunk really was large
    assert max(sizes) < 1024 * 1024


async def test_errors_are_recoverable(provider: MockProvider, http: aiohttp.ClientSession) -> None:
    async with await open_session(http, provider) as ws:
        await next_event(ws)
        await ws.send_str("not json")
        parse_error = await next_event(ws)
        await ws.send_bytes(b"\x00\x01")
        binary_error = await next_event(ws)
        await send_all(ws, [{"type": "nope", "event_id": "evt_client"}])
        unknown = await next_event(ws)
        await send_all(ws, [{"type": "response.create"}])
        assert (await next_event(ws))["type"] == "response.created"
    assert parse_error["error"]["code"] == "invalid_event"
    assert parse_error["error"]["message"].endswith("could not be parsed.")
    assert binary_error["error"]["code"] == "invalid_event"
    assert unknown["error"]["event_id"] == "evt_client"
    assert [e["type"] for e in provider.events_received] == ["nope", "response.create"]


async def test_commit_empty_and_conflicting_response_over_the_wire(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    async with await open_session(http, provider) as ws:
        await next_event(ws)
        await send_all(
            ws,
            [
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
                },
                {"type": "input_audio_buffer.commit"},
            ],
        )
        await next_event(ws)
        empty = await next_event(ws)
        assert empty["error"]["code"] == "input_audio_buffer_commit_empty"
        assert empty["error"]["message"].endswith("buffer only has 0.00ms of audio.")
        # Two response.create back to back: the second arrives while the first is active.
        await send_all(ws, [{"type": "response.create"}, {"type": "response.create"}])
        events = await events_until(ws, "response.done")
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1
    assert errors[0]["error"]["code"] == "conversation_already_has_active_response"
    assert events[-1]["response"]["status"] == "completed"


async def test_real_time_pacing_spreads_audio_and_lets_cancel_land_mid_response(
    http: aiohttp.ClientSession,
) -> None:
    options = MockOptions(realtime_pacing=1.0, reply_audio_ms=3000, audio_chunk_ms=100)
    async with MockProvider(options) as provider, await open_session(http, provider) as ws:
        await next_event(ws)
        loop = asyncio.get_running_loop()
        await send_all(ws, [{"type": "response.create"}])
        started = loop.time()
        deltas = [e for e in await events_until(ws, "response.output_audio.delta")]
        for _ in range(2):
            deltas += await events_until(ws, "response.output_audio.delta")
        # Three 100 ms chunks at real-time pace cannot arrive in under 200 ms.
        assert loop.time() - started >= 0.19
        await send_all(ws, [{"type": "response.cancel"}])
        rest = await events_until(ws, "response.done")
    audio_deltas = [e for e in deltas + rest if e["type"] == "response.output_audio.delta"]
    response = rest[-1]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"]["reason"] == "client_cancelled"
    assert 3 <= len(audio_deltas) < 30
    produced_ms = sum(len(base64.b64decode(e["delta"])) for e in audio_deltas) / 48
    assert response["usage"]["output_token_details"]["audio_tokens"] == math.ceil(produced_ms / 50)


async def test_pacing_two_is_twice_as_fast_as_real_time(http: aiohttp.ClientSession) -> None:
    options = MockOptions(realtime_pacing=2.0, reply_audio_ms=600, audio_chunk_ms=100)
    async with MockProvider(options) as provider, await open_session(http, provider) as ws:
        await next_event(ws)
        loop = asyncio.get_running_loop()
        await send_all(ws, [{"type": "response.create"}])
        started = loop.time()
        await events_until(ws, "response.done")
        assert loop.time() - started >= 0.29  # 600 ms of audio at 2x


async def test_subprotocol_auth_and_echo(http: aiohttp.ClientSession) -> None:
    options = MockOptions(realtime_pacing=0, api_keys=frozenset({"sk-browser"}))
    async with MockProvider(options) as provider:
        ws = await open_session(
            http,
            provider,
            headers={},
            protocols=("realtime", "openai-insecure-api-key.sk-browser"),
        )
        async with ws:
            assert ws.protocol == "realtime"  # never the key-bearing protocol
            assert (await next_event(ws))["type"] == "session.created"
    [handshake] = provider.handshakes
    assert handshake.accepted
    assert handshake.subprotocols == ("realtime", "openai-insecure-api-key.sk-browser")
    assert handshake.path == "/v1/realtime"
    assert handshake.query == {"model": "gpt-realtime"}
    assert "sk-browser" not in repr(handshake)


async def test_beta_header_speaks_beta(provider: MockProvider, http: aiohttp.ClientSession) -> None:
    ws = await open_session(
        http, provider, headers={"Authorization": "Bearer k", "OpenAI-Beta": "realtime=v1"}
    )
    async with ws:
        created = await next_event(ws)
        assert created["session"]["modalities"] == ["text", "audio"]
        await send_all(ws, [{"type": "response.create"}])
        events = await events_until(ws, "response.done")
    assert "response.audio.delta" in types(events)
    assert "conversation.item.created" in types(events)
    assert provider.handshakes[0].headers["OpenAI-Beta"] == "realtime=v1"


async def test_azure_preview_and_ga_paths(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    base = provider.http_url.replace("http", "ws")
    ws = await open_session(
        http,
        provider,
        "/openai/realtime?api-version=2025-04-01-preview&deployment=my-dep",
        headers={"api-key": "az-key"},
        base=base,
    )
    async with ws:
        created = await next_event(ws)
    assert created["session"]["model"] == "my-dep"
    assert "modalities" in created["session"]  # Azure preview speaks the beta shape
    ws = await open_session(http, provider, "/openai/v1/realtime?model=my-dep", base=base)
    async with ws:
        created = await next_event(ws)
    assert created["session"]["model"] == "my-dep"
    assert created["session"]["type"] == "realtime"
    async with http.get(
        provider.http_url + "/openai/realtime?deployment=x",
        headers={"Connection": "Upgrade", "Upgrade": "websocket"},
    ) as response:
        assert response.status == 400


async def test_plain_get_on_the_endpoint_is_426_and_healthz_is_ok(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    async with http.get(provider.http_url + "/v1/realtime?model=m") as response:
        assert response.status == 426
        assert (await response.json())["error"]["type"] == "invalid_request_error"
    async with http.get(provider.http_url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_client_close_code_is_recorded(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    ws = await open_session(http, provider)
    await next_event(ws)
    await ws.close(code=4321, message=b"client says bye")
    await provider.wait_idle()
    [session] = provider.sessions
    assert (session.close_code, session.close_reason) == (4321, "client says bye")
    assert session.events_sent == 1
    assert session.ended.is_set()


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
async def test_g711_sessions_hear_and_speak_g711(
    fmt: str, provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    from rtrelay.mock._audio import decode, encode

    async with await open_session(http, provider) as ws:
        await next_event(ws)
        session = {
            "type": "realtime",
            "audio": {"input": {"format": {"type": fmt}}, "output": {"format": {"type": fmt}}},
        }
        await send_all(ws, [{"type": "session.update", "session": session}])
        await next_event(ws)
        linear = decode(speech_pcm16(900) + bytes(48 * 700), "audio/pcm")[::3]  # to 8 kHz
        g711 = encode(linear, fmt)  # type: ignore[arg-type]
        chunks = [g711[i : i + 800] for i in range(0, len(g711), 800)]
        await send_all(
            ws,
            [
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(c).decode()}
                for c in chunks
            ],
        )
        events = await events_until(ws, "response.done")
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert len(audio) == 1000 * 8  # one byte per sample at 8 kHz
    assert events[0]["type"] == "input_audio_buffer.speech_started"
    assert events[-1]["response"]["audio"]["output"]["format"] == {"type": fmt}
