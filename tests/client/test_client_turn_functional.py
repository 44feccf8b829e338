"""RealtimeClient end to end: a full spoken turn, in the GA and the beta shape."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from conftest import Endpoint, LoopWatch
from rtrelay.client import (
    ConnectionClosed,
    Event,
    RealtimeClient,
    RealtimeConnection,
    UpstreamError,
)
from rtrelay.mock import MockOptions, speech_pcm16

pytestmark = pytest.mark.timeout(30)


def _client(endpoint: Endpoint, **options: Any) -> RealtimeClient:
    options = {"max_retries": 1, "min_reconnection_delay": 0.01, **options}
    return RealtimeClient(
        RealtimeConnection(endpoint.url, api_key=endpoint.api_key, model="gpt-realtime", **options)
    )


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])
async def test_a_full_spoken_turn(loop_watch: LoopWatch, endpoint: Endpoint, beta: bool) -> None:
    client = _client(endpoint, beta=beta)
    audio_deltas: list[Event] = []
    seen: list[str] = []
    # Registered under the GA name; the beta shape's response.audio.delta arrives here too.
    client.on("response.output_audio.delta", audio_deltas.append)

    @client.on("*")
    async def every(event: Event) -> None:  # coroutine handlers are awaited in order
        seen.append(event["type"])

    created = client.wait_for("session.created")
    transcription = {"model": "whisper-1"}
    if beta:
        update = {"turn_detection": None, "input_audio_transcription": transcription}
    else:
        update = {"audio": {"input": {"turn_detection": None, "transcription": transcription}}}
    async with asyncio.timeout(20), client:
        await created
        updated = client.wait_for("session.updated")
        await client.update_session(update)
        await updated
        done = client.wait_for("response.done")
        transcribed = client.wait_for("conversation.item.input_audio_transcription.completed")
        await client.append_audio(speech_pcm16(1200), chunk_bytes=9600)
        await client.commit_audio()
        await client.create_response()
        finished = await done
        await transcribed  # asynchronous: may land before or after the response

    response = finished["response"]
    assert response["status"] == "completed"
    user, assistant = client.conversation.items
    assert user.role == "user"
    assert user.transcript.startswith("Hello")
    assert assistant.role == "assistant"
    assert assistant.status == "completed"
    assert assistant.response_id == response["id"]
    assert assistant.transcript.startswith("Sure!")
    assert assistant.audio_ms == pytest.approx(1000)
    assert len(audio_deltas) >= 1
    assert seen[0] == "session.created"
    assert ("response.audio.delta" if beta else "response.output_audio.delta") in seen
    # Exactly what was asked for reached the provider: one session.update, the audio
    # (chunked: 1.2 s = 57 600 bytes in 9 600-byte appends), the commit, the response.
    sent = [e["type"] for e in endpoint.provider.events_received]
    assert sent == ["session.update"] + ["input_audio_buffer.append"] * 6 + [
        "input_audio_buffer.commit",
        "response.create",
    ]
    session = endpoint.provider.events_received[0]["session"]
    assert session.get("type") == (None if beta else "realtime")


async def test_text_turn_and_handler_order(loop_watch: LoopWatch, endpoint: Endpoint) -> None:
    client = _client(endpoint)
    order: list[str] = []
    client.on("response.done", lambda e: order.append("specific"))
    client.on("*", lambda e: order.append("wildcard") if e["type"] == "response.done" else None)
    async with client:
        done = client.wait_for("response.done")
        await client.send_text("Hi there")
        finished = await done
        await asyncio.sleep(0)
    assert finished["response"]["status"] == "completed"
    assert order == ["specific", "wildcard"]
    items = client.conversation.items
    assert items[0].role == "user"
    assert items[0].raw["content"][0]["text"] == "Hi there"
    assert items[-1].transcript or items[-1].text


async def test_the_client_never_sends_a_session_update_of_its_own(
    loop_watch: LoopWatch, endpoint: Endpoint
) -> None:
    async with _client(endpoint) as client:
        await client.wait_for("session.created")
        await client.commit_audio()
        await client.wait_for("error")  # the buffer is empty: a non-fatal error event
    assert [e["type"] for e in endpoint.provider.events_received] == ["input_audio_buffer.commit"]


async def test_a_failing_handler_does_not_stop_dispatch(
    loop_watch: LoopWatch, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(endpoint)
    later: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    client.on("session.created", broken)
    client.on("session.created", lambda e: later.append(e["type"]))
    with caplog.at_level(logging.ERROR, logger="rtrelay.client"):
        async with client:
            await client.wait_for("session.created")
            await asyncio.sleep(0)
    assert later == ["session.created"]
    assert "handler" in caplog.text


async def test_waits_end_with_the_connections_end(
    loop_watch: LoopWatch, endpoint: Endpoint
) -> None:
    endpoint.provider.options = MockOptions(
        realtime_pacing=0, close_after_events=1, close_code=1011, close_reason="boom"
    )
    client = _client(endpoint, max_retries=0)
    never = client.wait_for("response.done")
    with pytest.raises(UpstreamError):
        async with client:
            await never
    assert isinstance(client.ended, UpstreamError)
    with pytest.raises(UpstreamError):
        await client.wait_for("anything")  # after the end, waits fail at once

    clean = _client(endpoint)
    endpoint.provider.options = MockOptions(realtime_pacing=0)
    async with clean:
        pending = clean.wait_for("response.done")
        abandoned = clean.wait_for("response.done")  # never awaited: must not warn
    with pytest.raises(ConnectionClosed):
        await pending
    assert abandoned.done()
