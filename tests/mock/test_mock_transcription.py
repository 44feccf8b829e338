"""The simulated transcription session: its logic alone, and over a real socket with the SDK."""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
from mock_wire import append_audio, error_of, send_event, speech_turn, types
from openai import AsyncOpenAI
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent as TranscriptionCompleted,
)
from openai.types.realtime.conversation_item_input_audio_transcription_completed_event import (
    UsageTranscriptTextUsageDuration as DurationUsage,
)

from rtrelay.mock import MockProvider
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._transcription import TranscriptionProtocol

Event = dict[str, Any]
COMPLETED = "conversation.item.input_audio_transcription.completed"


def make() -> TranscriptionProtocol:
    return TranscriptionProtocol(now=1_700_000_000, ids=IdFactory(random.Random(5)))


def transcribing(model: str, **input_settings: Any) -> Event:
    audio_input = {"transcription": {"model": model}, **input_settings}
    return {
        "type": "session.update",
        "session": {"type": "transcription", "audio": {"input": audio_input}},
    }


def append(protocol: TranscriptionProtocol, pcm: bytes) -> list[Event]:
    return append_audio(protocol, "input_audio_buffer.append", pcm)


def test_session_created_is_a_transcription_session_without_a_model() -> None:
    [created] = make().connect()
    session = created["session"]
    assert (session["type"], session["object"]) == (
        "transcription",
        "realtime.transcription_session",
    )
    assert "model" not in session
    assert session["expires_at"] == 1_700_000_000 + 3600
    audio_input = session["audio"]["input"]
    assert audio_input["transcription"] is None
    assert audio_input["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_input["turn_detection"]["type"] == "server_vad"


def test_session_update_names_the_transcription_model() -> None:
    protocol = make()
    [updated] = send_event(protocol, transcribing("gpt-realtime-whisper"))
    assert updated["type"] == "session.updated"
    assert updated["session"]["audio"]["input"]["transcription"]["model"] == (
        "gpt-realtime-whisper"
    )
    assert protocol.transcription_model == "gpt-realtime-whisper"


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"audio": {}}, "missing_required_parameter", "session.type"),
        ({"type": "realtime"}, "invalid_value", "session.type"),
        ({"type": "transcription", "instructions": "hi"}, "unknown_parameter", None),
        (
            {"type": "transcription", "audio": {"output": {"voice": "alloy"}}},
            "unknown_parameter",
            None,
        ),
        (
            {"type": "transcription", "audio": {"input": {"transcription": {"model": 1}}}},
            "invalid_type",
            "session.audio.input.transcription.model",
        ),
    ],
)
def test_a_bad_update_is_an_error_and_changes_nothing(
    session: Event, code: str, param: str | None
) -> None:
    protocol = make()
    error = error_of(send_event(protocol, {"type": "session.update", "session": session}))
    assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    assert protocol.transcription_model is None


@pytest.mark.parametrize(
    ("model", "usage_type"),
    [
        ("gpt-realtime-whisper", "duration"),
        ("gpt-live-transcribe", "duration"),
        ("whisper-1", "duration"),
        ("gpt-4o-transcribe", "tokens"),
        ("gpt-4o-mini-transcribe", "tokens"),
    ],
)
def test_each_vad_turn_is_transcribed_with_usage_as_its_model_is_priced(
    model: str, usage_type: str
) -> None:
    protocol = make()
    send_event(protocol, transcribing(model))
    events = append(protocol, speech_turn(1000))
    kinds = types(events)
    assert kinds[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert kinds[-1] == COMPLETED
    assert set(kinds[3:-1]) == {"conversation.item.input_audio_transcription.delta"}
    assert not any(kind.startswith("response.") for kind in kinds)
    completed = events[-1]
    assert completed["item_id"] == events[2]["item_id"]
    deltas = "".join(e["delta"] for e in events[3:-1])
    assert deltas == completed["transcript"] != ""
    usage = completed["usage"]
    assert usage["type"] == usage_type
    if usage_type == "duration":
        # The turn: speech plus prefix padding and the silence that ended it.
        assert 1.0 <= usage["seconds"] <= 1.8
    else:
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert usage["input_token_details"]["audio_tokens"] == usage["input_tokens"] > 0


def test_turns_chain_and_an_untranscribed_session_only_commits() -> None:
    protocol = make()
    first = append(protocol, speech_turn(600))
    assert types(first)[-1] == "input_audio_buffer.committed"
    second = append(protocol, speech_turn(600))
    assert second[-1]["previous_item_id"] == first[-1]["item_id"]


def test_without_turn_detection_the_client_commits() -> None:
    protocol = make()
    send_event(protocol, transcribing("gpt-realtime-whisper", turn_detection=None))
    assert append(protocol, speech_turn(1000)) == []
    events = send_event(protocol, {"type": "input_audio_buffer.commit"})
    assert types(events)[0] == "input_audio_buffer.committed"
    assert events[-1]["usage"] == {"type": "duration", "seconds": 2.1}
    assert error_of(send_event(protocol, {"type": "input_audio_buffer.commit"}))["code"] == (
        "input_audio_buffer_commit_empty"
    )


def test_a_transcription_session_never_responds() -> None:
    error = error_of(send_event(make(), {"type": "response.create", "event_id": "ev_1"}))
    assert (error["code"], error["param"], error["event_id"]) == (
        "invalid_event",
        "type",
        "ev_1",
    )


async def test_the_sdk_transcribes_through_intent_transcription(provider: MockProvider) -> None:
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        assert created.session.type == "transcription"
        await connection.session.update(
            session={
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "gpt-realtime-whisper"}}},
            }
        )
        assert (await connection.recv()).type == "session.updated"
        pcm = speech_turn(800)
        for i in range(0, len(pcm), 4800):
            audio = base64.b64encode(pcm[i : i + 4800]).decode()
            await connection.input_audio_buffer.append(audio=audio)
        kinds = []
        async for event in connection:
            kinds.append(event.type)
            if isinstance(event, TranscriptionCompleted):
                assert isinstance(event.usage, DurationUsage)
                assert event.usage.seconds > 0
                break
    assert "input_audio_buffer.committed" in kinds
    [handshake] = provider.handshakes
    assert handshake.query == {"intent": "transcription"}
    [session] = provider.sessions
    await session.ended.wait()
    assert session.model == "gpt-realtime-whisper"
