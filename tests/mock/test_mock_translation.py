"""The simulated realtime translation session: its logic alone, and over a real socket."""

from __future__ import annotations

import base64
import random
from typing import Any

import aiohttp
import pytest
from mock_wire import (
    append_audio,
    drain,
    error_of,
    expect_close,
    next_event,
    open_session,
    send_event,
    speech_turn,
)
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeTranslationServerEvent
from pydantic import TypeAdapter

from rtrelay.mock import MockOptions, MockProvider, TranslationProtocol, silence_pcm16, speech_pcm16
from rtrelay.mock._ids import IdFactory

Event = dict[str, Any]
CHUNK = 200 * 48  # the 200 ms frames translation consumes
TRANSCRIBED = {"audio": {"input": {"transcription": {"model": "gpt-realtime-whisper"}}}}


def make() -> TranslationProtocol:
    return TranslationProtocol(
        model="gpt-realtime-translate", now=1_700_000_000, ids=IdFactory(random.Random(3))
    )


def append(protocol: TranslationProtocol, pcm: bytes) -> list[Event]:
    return append_audio(protocol, "session.input_audio_buffer.append", pcm, chunk_ms=200)


def test_session_created_is_a_translation_session() -> None:
    [created] = make().connect()
    assert created["type"] == "session.created"
    session = created["session"]
    assert session["type"] == "translation"
    assert session["model"] == "gpt-realtime-translate"
    assert session["expires_at"] == 1_700_000_000 + 3600
    assert session["audio"] == {
        "input": {"noise_reduction": None, "transcription": None},
        "output": {"language": None},
    }


def test_session_update_changes_language_transcription_and_noise_reduction() -> None:
    protocol = make()
    update = {
        "audio": {
            "output": {"language": "fr"},
            "input": {
                "transcription": {"model": "gpt-realtime-whisper"},
                "noise_reduction": {"type": "near_field"},
            },
        }
    }
    [updated] = send_event(protocol, {"type": "session.update", "session": update})
    assert updated["type"] == "session.updated"
    assert updated["session"]["audio"] == {
        "input": {
            "noise_reduction": {"type": "near_field", "strength": 1.0},
            "transcription": {"model": "gpt-realtime-whisper"},
        },
        "output": {"language": "fr"},
    }
    noise = {"audio": {"input": {"noise_reduction": {"type": "far_field"}}}}
    [again] = send_event(protocol, {"type": "session.update", "session": noise})
    assert again["session"]["audio"]["input"]["noise_reduction"] == {
        "type": "far_field",
        "strength": 1.0,
    }
    assert again["session"]["audio"]["output"]["language"] == "fr"


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"model": "gpt-realtime"}, "session.model"),
        ({"type": "realtime"}, "session.type"),
        ({"instructions": "x"}, "session.instructions"),
        ({"audio": {"output": {"voice": "marin"}}}, "session.audio.output.voice"),
        ({"audio": {"input": {"turn_detection": None}}}, "session.audio.input.turn_detection"),
        ({"audio": {"input": {"format": {"type": "audio/pcm"}}}}, "session.audio.input.format"),
    ],
)
def test_session_update_rejects_anything_else(session: Event, param: str) -> None:
    protocol = make()
    error = error_of(
        send_event(protocol, {"type": "session.update", "event_id": "u", "session": session})
    )
    assert (error["code"], error["param"], error["event_id"]) == ("unknown_parameter", param, "u")


def test_an_invalid_update_changes_nothing() -> None:
    protocol = make()
    update = {"audio": {"output": {"language": "de"}, "input": {"noise_reduction": {"type": "x"}}}}
    error = error_of(send_event(protocol, {"type": "session.update", "session": update}))
    assert error["param"] == "session.audio.input.noise_reduction.type"
    [updated] = send_event(protocol, {"type": "session.update", "session": {}})
    assert updated["session"]["audio"]["output"]["language"] is None


def test_speech_is_translated_into_paced_audio_with_transcripts() -> None:
    protocol = make()
    send_event(protocol, {"type": "session.update", "session": TRANSCRIBED})
    heard = append(protocol, silence_pcm16(400) + speech_pcm16(1200) + silence_pcm16(800))
    assert heard
    assert {e["type"] for e in heard} == {"session.input_transcript.delta"}
    assert all(e["elapsed_ms"] % 200 == 0 for e in heard)
    steps = []
    while protocol.response_active:
        steps.append(protocol.stream_step())
    events = [e for step in steps for e in step.events]
    audio = [e for e in events if e["type"] == "session.output_audio.delta"]
    text = [e for e in events if e["type"] == "session.output_transcript.delta"]
    assert audio
    assert text
    assert {(e["format"], e["sample_rate"], e["channels"]) for e in audio} == {("pcm16", 24000, 1)}
    translated_ms = len(b"".join(base64.b64decode(e["delta"]) for e in audio)) / 48
    assert translated_ms == pytest.approx(sum(step.duration_ms for step in steps))
    assert 1200 <= translated_ms <= 1200 + 300 + 800  # the utterance as VAD bounds it
    assert not any(e["type"].startswith("response.") for e in events)


def test_no_source_transcript_unless_configured() -> None:
    protocol = make()
    assert append(protocol, silence_pcm16(400) + speech_pcm16(1200) + silence_pcm16(800)) == []
    assert protocol.response_active


def test_close_flushes_speech_in_progress_then_closes() -> None:
    protocol = make()
    send_event(protocol, {"type": "session.update", "session": TRANSCRIBED})
    assert append(protocol, silence_pcm16(400) + speech_pcm16(1200)) == []  # still speaking
    flushed = send_event(protocol, {"type": "session.close"})
    assert flushed
    assert {e["type"] for e in flushed} == {"session.input_transcript.delta"}
    assert not protocol.finished
    events = drain(protocol)
    assert events[-1]["type"] == "session.closed"
    assert protocol.finished
    assert any(e["type"] == "session.output_audio.delta" for e in events)
    assert error_of(send_event(protocol, {"type": "session.close"}))["code"] == "invalid_event"


def test_close_when_idle_is_immediate() -> None:
    protocol = make()
    closed = send_event(protocol, {"type": "session.close"})
    assert [e["type"] for e in closed] == ["session.closed"]
    assert protocol.finished


def test_unknown_events_are_errors() -> None:
    protocol = make()
    for kind in ("response.create", "input_audio_buffer.append", "session.start"):
        assert error_of(send_event(protocol, {"type": kind}))["code"] == "invalid_event"


async def test_sdk_translation_session() -> None:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
        connect = client.realtime.translations.connect(model="gpt-realtime-translate")
        async with connect as connection:
            created = await connection.recv()
            await connection.session.update(
                session={"audio": {"output": {"language": "es"}, **TRANSCRIBED["audio"]}}
            )
            updated = await connection.recv()
            pcm = speech_turn(1200, lead_ms=400, tail_ms=800)
            for i in range(0, len(pcm), CHUNK):
                chunk = base64.b64encode(pcm[i : i + CHUNK]).decode()
                await connection.session.input_audio_buffer.append(audio=chunk)
            await connection.session.close()
            events = [event async for event in connection]  # ends with close 1000
    assert created.type == "session.created"
    assert created.session.model == "gpt-realtime-translate"
    assert updated.session.audio.output.language == "es"
    kinds = [e.type for e in events]
    assert kinds[-1] == "session.closed"
    assert {
        "session.input_transcript.delta",
        "session.output_transcript.delta",
        "session.output_audio.delta",
    } == set(kinds[:-1])
    [record] = provider.sessions
    assert record.path == "/v1/realtime/translations"
    assert record.server_close_code == 1000
    assert provider.handshakes[0].query == {"model": "gpt-realtime-translate"}


async def test_a_model_that_does_not_translate_is_refused(http: aiohttp.ClientSession) -> None:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        ws = await open_session(http, provider, "/realtime/translations?model=gpt-realtime")
        [error] = await expect_close(ws, 3000, "invalid_request_error.invalid_model")
        ws = await open_session(
            http, provider, "/realtime/translations?model=gpt-realtime-translate"
        )
        created = await next_event(ws)
        await ws.close()
    assert error["error"]["code"] == "invalid_model"
    assert created["type"] == "session.created"


def test_every_event_validates_against_the_sdk_types() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(RealtimeTranslationServerEvent)
    protocol = make()
    events = protocol.connect()
    events += send_event(protocol, {"type": "session.update", "session": TRANSCRIBED})
    events += send_event(protocol, {"type": "session.update", "session": {"model": "x"}})
    events += append(protocol, silence_pcm16(400) + speech_pcm16(1200) + silence_pcm16(800))
    events += send_event(protocol, {"type": "session.close"})
    events += drain(protocol)
    assert len({e["type"] for e in events}) == 7  # every server event type
    for event in events:
        adapter.validate_python(event)
