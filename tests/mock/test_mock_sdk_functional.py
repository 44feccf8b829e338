"""The official ``openai`` SDK against the simulated provider: GA, beta and Azure clients."""

from __future__ import annotations

import base64
import math
from typing import Any

from mock_wire import speech_turn
from openai import AsyncAzureOpenAI, AsyncOpenAI

from rtrelay.mock import MockProvider

CHUNK = 100 * 48  # 100 ms of pcm16 at 24 kHz


async def collect_until_done(connection: Any) -> list[Any]:
    events = []
    async for event in connection:
        events.append(event)
        if event.type == "response.done":
            break
    return events


async def test_ga_sdk_full_turn_with_server_vad(provider: MockProvider) -> None:
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        await connection.session.update(
            session={
                "type": "realtime",
                "instructions": "Be brief.",
                "output_modalities": ["audio"],
            }
        )
        updated = await connection.recv()
        assert updated.type == "session.updated"
        audio = speech_turn(1200, lead_ms=200, tail_ms=700)
        for start in range(0, len(audio), CHUNK):
            await connection.input_audio_buffer.append(
                audio=base64.b64encode(audio[start : start + CHUNK]).decode()
            )
        events = await collect_until_done(connection)

    kinds = [e.type for e in events]
    assert kinds[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    started, stopped = events[0], events[1]
    deltas = [e for e in events if e.type == "response.output_audio.delta"]
    produced = b"".join(base64.b64decode(e.delta) for e in deltas)
    done = events[-1]
    assert done.response.status == "completed"
    usage = done.response.usage
    assert usage.input_token_details.audio_tokens == math.ceil(
        (stopped.audio_end_ms - started.audio_start_ms) / 100
    )
    assert usage.input_token_details.text_tokens == math.ceil(len("Be brief.") / 4)
    assert usage.output_token_details.audio_tokens == len(produced) // 48 // 50
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    [handshake] = provider.handshakes
    assert handshake.headers["Authorization"] == "Bearer sk-test"
    assert handshake.query == {"model": "gpt-realtime"}
    assert "OpenAI-Beta" not in handshake.headers


async def test_beta_sdk_speaks_beta(provider: MockProvider) -> None:
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
    async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as connection:
        created = await connection.recv()
        assert created.session.modalities == ["text", "audio"]
        await connection.session.update(session={"modalities": ["text"], "instructions": "Hi"})
        assert (await connection.recv()).session.modalities == ["text"]
        await connection.response.create()
        events = await collect_until_done(connection)
    kinds = [e.type for e in events]
    assert "response.text.delta" in kinds
    assert "conversation.item.created" in kinds
    text = "".join(e.delta for e in events if e.type == "response.text.delta")
    assert events[-1].response.usage.output_token_details.text_tokens == math.ceil(len(text) / 4)
    assert provider.handshakes[0].headers["OpenAI-Beta"] == "realtime=v1"
    assert provider.sessions[0].dialect == "beta"


async def test_azure_sdk_reaches_the_preview_path_with_api_key(provider: MockProvider) -> None:
    client = AsyncAzureOpenAI(
        api_key="az-key",
        api_version="2025-04-01-preview",
        azure_endpoint=provider.http_url,
        websocket_base_url=provider.url.removesuffix("/v1") + "/openai",
    )
    async with client.realtime.connect(model="my-deployment") as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        await connection.response.create()
        events = await collect_until_done(connection)
    assert events[-1].response.status == "completed"
    [handshake] = provider.handshakes
    assert handshake.path == "/openai/realtime"
    assert handshake.query["deployment"] == "my-deployment"
    assert handshake.query["api-version"] == "2025-04-01-preview"
    assert handshake.headers["api-key"] == "az-key"
