"""The simulated provider's session logic, without sockets or clocks."""

from __future__ import annotations

import base64
import math
import random
from typing import Any

import orjson
import pytest

from rtrelay.mock import RealtimeProtocol, silence_pcm16, speech_pcm16
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._session_config import DEFAULT_INSTRUCTIONS

Event = dict[str, Any]
INSTRUCTIONS = "Answer in one short sentence."  # 29 characters: 8 text tokens


def make(dialect: str = "ga", **kwargs: Any) -> RealtimeProtocol:
    return RealtimeProtocol(
        model="gpt-realtime",
        dialect=dialect,  # type: ignore[arg-type]
        now=1_700_000_000,
        ids=IdFactory(random.Random(7)),
        **kwargs,
    )


def send(protocol: RealtimeProtocol, event: Event | bytes) -> list[Event]:
    data = event if isinstance(event, bytes) else orjson.dumps(event)
    return protocol.receive_text(data).replies


def drain(protocol: RealtimeProtocol) -> list[Event]:
    events: list[Event] = []
    while protocol.response_active:
        events += protocol.stream_step().events
    return events


def append(protocol: RealtimeProtocol, pcm: bytes, chunk_ms: int = 100) -> list[Event]:
    events: list[Event] = []
    size = chunk_ms * 48
    for i in range(0, len(pcm), size):
        audio = base64.b64encode(pcm[i : i + size]).decode()
        events += send(protocol, {"type": "input_audio_buffer.append", "audio": audio})
    return events


def types(events: list[Event]) -> list[str]:
    return [e["type"] for e in events]


def error_of(events: list[Event]) -> dict[str, Any]:
    assert types(events) == ["error"], events
    error: dict[str, Any] = events[0]["error"]
    return error


def manual(protocol: RealtimeProtocol, **session: Any) -> None:
    update = {"type": "realtime", "instructions": INSTRUCTIONS}
    update["audio"] = {"input": {"turn_detection": None}}
    update.update(session)
    assert types(send(protocol, {"type": "session.update", "session": update})) == [
        "session.updated"
    ]


# --- session ----------------------------------------------------------------------------


def test_session_created_is_a_full_ga_session() -> None:
    protocol = make()
    [event] = protocol.connect()
    assert event["type"] == "session.created"
    assert event["event_id"].startswith("event_")
    session = event["session"]
    assert session["id"].startswith("sess_")
    assert session["object"] == "realtime.session"
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime"
    assert session["output_modalities"] == ["audio"]
    assert session["instructions"] == DEFAULT_INSTRUCTIONS
    assert session["expires_at"] == 1_700_000_000 + 3600
    audio_in = session["audio"]["input"]
    assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_in["transcription"] is None
    assert audio_in["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "alloy",
        "speed": 1.0,
    }
    assert session["tools"] == []


def test_session_created_in_beta_shape() -> None:
    session = make("beta").connect()[0]["session"]
    assert session["modalities"] == ["text", "audio"]
    assert session["voice"] == "alloy"
    assert session["input_audio_format"] == "pcm16"
    assert session["output_audio_format"] == "pcm16"
    assert session["turn_detection"]["type"] == "server_vad"
    assert "idle_timeout_ms" not in session["turn_detection"]
    assert "audio" not in session and "output_modalities" not in session


def test_session_update_merges_and_answers_with_the_full_session() -> None:
    protocol = make()
    [event] = send(
        protocol,
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {
                    "output": {"voice": "marin"},
                    "input": {"format": {"type": "audio/pcmu"}},
                },
            },
        },
    )
    assert event["type"] == "session.updated"
    session = event["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"  # kept


def test_ga_session_update_without_type_is_missing_required_parameter() -> None:
    protocol = make()
    error = error_of(send(protocol, {"type": "session.update", "event_id": "evt_1", "session": {}}))
    assert error["code"] == "missing_required_parameter"
    assert error["param"] == "session.type"
    assert error["message"] == "Missing required parameter: 'session.type'."
    assert error["event_id"] == "evt_1"


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"type": "realtime", "modalities": ["text"]}, "session.modalities"),
        ({"type": "realtime", "audio": {"input": {"colour": 1}}}, "session.audio.input.colour"),
        (
            {"type": "realtime", "audio": {"input": {"turn_detection": {"loud": True}}}},
            "session.audio.input.turn_detection.loud",
        ),
    ],
)
def test_unknown_session_fields_are_unknown_parameter(session: Event, param: str) -> None:
    error = error_of(send(make(), {"type": "session.update", "session": session}))
    assert error["code"] == "unknown_parameter"
    assert error["param"] == param
    assert error["message"] == f"Unknown parameter: '{param}'."


def test_beta_session_update_uses_beta_field_names() -> None:
    protocol = make("beta")
    [event] = send(
        protocol,
        {
            "type": "session.update",
            "session": {"modalities": ["text"], "voice": "echo", "turn_detection": None},
        },
    )
    session = event["session"]
    assert session["modalities"] == ["text"]
    assert session["voice"] == "echo"
    assert session["turn_detection"] is None
    error = error_of(
        send(protocol, {"type": "session.update", "session": {"output_modalities": ["text"]}})
    )
    assert error["code"] == "unknown_parameter"


def test_invalid_values_are_reported_and_leave_the_session_unchanged() -> None:
    protocol = make()
    error = error_of(
        send(
            protocol,
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "instructions": "x",
                    "audio": {"output": {"voice": "robot"}},
                },
            },
        )
    )
    assert error["code"] == "invalid_value"
    assert error["param"] == "session.audio.output.voice"
    assert protocol.config.instructions == DEFAULT_INSTRUCTIONS
    error = error_of(
        send(
            protocol, {"type": "session.update", "session": {"type": "realtime", "instructions": 3}}
        )
    )
    assert error["code"] == "invalid_type"


# --- envelope errors --------------------------------------------------------------------


def test_non_json_frame_is_an_invalid_event_and_the_session_continues() -> None:
    protocol = make()
    inbound = protocol.receive_text(b"{not json")
    assert inbound.event is None
    error = error_of(inbound.replies)
    assert error["code"] == "invalid_event"
    assert error["message"].endswith("could not be parsed.")
    assert types(send(protocol, {"type": "response.create"}))[0] == "response.created"


def test_missing_type_is_reported() -> None:
    error = error_of(send(make(), {"event_id": "evt_9"}))
    assert error["code"] == "invalid_event"
    assert error["message"] == "The 'type' field is missing."
    assert error["event_id"] == "evt_9"


def test_unknown_event_type_names_the_client_event() -> None:
    error = error_of(send(make(), {"type": "session.explode", "event_id": "evt_2"}))
    assert error["code"] == "invalid_event"
    assert error["param"] == "type"
    assert "'session.explode'" in error["message"]
    assert error["event_id"] == "evt_2"


def test_binary_frames_are_an_error() -> None:
    error = error_of(make().receive_binary())
    assert error["code"] == "invalid_event"


# --- input audio ------------------------------------------------------------------------


def test_server_vad_detects_a_turn_and_responds() -> None:
    protocol = make()
    events = append(protocol, silence_pcm16(500) + speech_pcm16(1000) + silence_pcm16(600))
    assert types(events)[:5] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    started, stopped, committed, added = events[:4]
    # Speech begins at 500 ms; the 300 ms prefix padding moves the start back to ~200 ms.
    assert 160 <= started["audio_start_ms"] <= 240
    # It ends at 1500 ms; the turn closes after 200 ms of silence.
    assert 1680 <= stopped["audio_end_ms"] <= 1760
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert added["item"]["id"] == committed["item_id"]
    assert added["item"]["role"] == "user"
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    assert types(events)[5] == "response.created"
    done = drain(protocol)[-1]
    audio_ms = stopped["audio_end_ms"] - started["audio_start_ms"]
    usage = done["response"]["usage"]
    assert usage["input_token_details"]["audio_tokens"] == math.ceil(audio_ms / 100)


def test_silence_alone_never_starts_speech() -> None:
    protocol = make()
    assert append(protocol, silence_pcm16(3000)) == []
    assert protocol.buffered_ms == pytest.approx(3000)


def test_create_response_false_commits_without_responding() -> None:
    protocol = make()
    send(
        protocol,
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "create_response": False}}
                },
            },
        },
    )
    events = append(protocol, speech_pcm16(600) + silence_pcm16(400))
    assert "input_audio_buffer.committed" in types(events)
    assert "response.created" not in types(events)
    assert not protocol.response_active


def test_commit_of_an_empty_buffer_is_commit_empty() -> None:
    protocol = make()
    manual(protocol)
    error = error_of(send(protocol, {"type": "input_audio_buffer.commit"}))
    assert error["code"] == "input_audio_buffer_commit_empty"
    assert error["message"].endswith(
        "Expected at least 100ms of audio, but buffer only has 0.00ms of audio."
    )


def test_commit_under_100_ms_is_commit_empty() -> None:
    protocol = make()
    manual(protocol)
    append(protocol, speech_pcm16(60))
    error = error_of(send(protocol, {"type": "input_audio_buffer.commit"}))
    assert "buffer only has 60.00ms of audio." in error["message"]


def test_manual_commit_and_clear() -> None:
    protocol = make()
    manual(protocol)
    assert append(protocol, speech_pcm16(700)) == []  # no VAD in manual mode
    committed, added, done = send(protocol, {"type": "input_audio_buffer.commit"})
    assert committed["type"] == "input_audio_buffer.committed"
    assert committed["previous_item_id"] is None
    assert added["item"]["id"] == committed["item_id"] == done["item"]["id"]
    assert not protocol.response_active  # manual mode never responds on its own
    append(protocol, speech_pcm16(300))
    assert types(send(protocol, {"type": "input_audio_buffer.clear"})) == [
        "input_audio_buffer.cleared"
    ]
    assert protocol.buffered_ms == 0
    [response_created, *_] = send(protocol, {"type": "response.create"})
    done_event = drain(protocol)[-1]
    usage = done_event["response"]["usage"]
    assert response_created["response"]["usage"] is None
    assert usage["input_token_details"]["audio_tokens"] == 7  # the 700 ms turn only
    assert usage["input_token_details"]["text_tokens"] == math.ceil(len(INSTRUCTIONS) / 4)


def test_transcription_reports_deltas_and_token_usage() -> None:
    protocol = make()
    manual(
        protocol,
        audio={"input": {"turn_detection": None, "transcription": {"model": "gpt-4o-transcribe"}}},
    )
    append(protocol, speech_pcm16(1200))
    events = send(protocol, {"type": "input_audio_buffer.commit"})
    deltas = [e for e in events if e["type"].endswith("input_audio_transcription.delta")]
    [completed] = [e for e in events if e["type"].endswith("input_audio_transcription.completed")]
    assert deltas
    assert "".join(d["delta"] for d in deltas) == completed["transcript"]
    usage = completed["usage"]
    assert usage["type"] == "tokens"
    assert usage["input_token_details"] == {"text_tokens": 0, "audio_tokens": 12}
    assert usage["output_tokens"] == math.ceil(len(completed["transcript"]) / 4)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    item = send(protocol, {"type": "conversation.item.retrieve", "item_id": completed["item_id"]})
    assert item[0]["item"]["content"][0]["transcript"] == completed["transcript"]


def test_whisper_transcription_usage_is_in_seconds() -> None:
    protocol = make()
    manual(
        protocol, audio={"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}}
    )
    append(protocol, speech_pcm16(1500))
    events = send(protocol, {"type": "input_audio_buffer.commit"})
    assert events[-1]["usage"] == {"type": "duration", "seconds": 1.5}


def test_append_with_bad_base64_is_invalid_value() -> None:
    error = error_of(send(make(), {"type": "input_audio_buffer.append", "audio": "***"}))
    assert error["code"] == "invalid_value"
    assert error["param"] == "audio"


# --- conversation items ------------------------------------------------------------------


def user_text(text: str, item_id: str | None = None) -> Event:
    item: Event = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }
    if item_id:
        item["id"] = item_id
    return {"type": "conversation.item.create", "item": item}


def test_item_create_answers_added_and_done_in_ga() -> None:
    protocol = make()
    added, done = send(protocol, user_text("hello", "item_a"))
    assert added["type"] == "conversation.item.added"
    assert done["type"] == "conversation.item.done"
    assert added["previous_item_id"] is None
    assert added["item"] == {
        "id": "item_a",
        "type": "message",
        "object": "realtime.item",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    second = send(protocol, user_text("again", "item_b"))
    assert second[0]["previous_item_id"] == "item_a"


def test_item_create_answers_created_in_beta() -> None:
    [created] = send(make("beta"), user_text("hello"))
    assert created["type"] == "conversation.item.created"


def test_item_retrieve_delete_and_missing_items() -> None:
    protocol = make()
    send(protocol, user_text("hello", "item_a"))
    [retrieved] = send(protocol, {"type": "conversation.item.retrieve", "item_id": "item_a"})
    assert retrieved["item"]["id"] == "item_a"
    [deleted] = send(protocol, {"type": "conversation.item.delete", "item_id": "item_a"})
    assert deleted == {
        "type": "conversation.item.deleted",
        "event_id": deleted["event_id"],
        "item_id": "item_a",
    }
    error = error_of(send(protocol, {"type": "conversation.item.retrieve", "item_id": "item_a"}))
    assert error["param"] == "item_id"


def test_truncate_shortens_assistant_audio_in_later_usage() -> None:
    protocol = make()
    manual(protocol)
    send(protocol, {"type": "response.create"})
    done = drain(protocol)[-1]
    item_id = done["response"]["output"][0]["id"]
    [truncated] = send(
        protocol,
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 400,
        },
    )
    assert truncated == {
        "type": "conversation.item.truncated",
        "event_id": truncated["event_id"],
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 400,
    }
    send(protocol, {"type": "response.create"})
    usage = drain(protocol)[-1]["response"]["usage"]
    assert usage["input_token_details"]["audio_tokens"] == 8  # 400 ms of assistant audio
    error = error_of(
        send(
            protocol,
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 5000,
            },
        )
    )
    assert error["param"] == "audio_end_ms"


# --- responses --------------------------------------------------------------------------

GA_SEQUENCE_HEAD = [
    "response.created",
    "rate_limits.updated",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
GA_SEQUENCE_TAIL = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]


def test_response_follows_the_typical_ga_sequence() -> None:
    protocol = make(reply_audio_ms=1000, audio_chunk_ms=100)
    head = send(protocol, {"type": "response.create"})
    assert types(head) == GA_SEQUENCE_HEAD
    body = drain(protocol)
    assert types(body)[-6:] == GA_SEQUENCE_TAIL
    deltas = types(body)[:-6]
    assert set(deltas) == {"response.output_audio.delta", "response.output_audio_transcript.delta"}
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in body if e["type"] == "response.output_audio.delta"
    )
    assert len(audio) == 1000 * 48
    assert deltas.count("response.output_audio.delta") == 10
    transcript = "".join(
        e["delta"] for e in body if e["type"] == "response.output_audio_transcript.delta"
    )
    assert body[-5]["transcript"] == transcript
    response = body[-1]["response"]
    assert response["status"] == "completed"
    assert response["status_details"] is None
    assert response["object"] == "realtime.response"
    assert response["id"] == head[0]["response"]["id"]
    assert response["id"].startswith("resp_")
    assert response["conversation_id"].startswith("conv_")
    assert response["output"][0]["content"] == [{"type": "output_audio", "transcript": transcript}]
    usage = response["usage"]
    assert usage["output_token_details"] == {
        "text_tokens": math.ceil(len(transcript) / 4),
        "audio_tokens": 20,  # 1000 ms at one token per 50 ms
    }
    assert usage["input_token_details"]["text_tokens"] == math.ceil(len(DEFAULT_INSTRUCTIONS) / 4)
    assert usage["input_token_details"]["image_tokens"] == 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    for event in head + body:
        assert event["event_id"].startswith("event_")


def test_response_in_beta_uses_beta_names() -> None:
    protocol = make("beta")
    head = send(protocol, {"type": "response.create"})
    assert types(head)[3] == "conversation.item.created"
    body = drain(protocol)
    assert "response.audio.delta" in types(body)
    assert "response.audio_transcript.delta" in types(body)
    assert types(body)[-5:] == [
        "response.audio.done",
        "response.audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    response = body[-1]["response"]
    assert response["modalities"] == ["text", "audio"]
    assert response["output"][0]["content"][0]["type"] == "audio"
    assert "image_tokens" not in response["usage"]["input_token_details"]


def test_text_only_response_streams_output_text() -> None:
    protocol = make()
    send(
        protocol,
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
    )
    head = send(protocol, {"type": "response.create"})
    assert head[-1]["part"] == {"type": "output_text", "text": ""}
    body = drain(protocol)
    text = "".join(e["delta"] for e in body if e["type"] == "response.output_text.delta")
    [done] = [e for e in body if e["type"] == "response.output_text.done"]
    assert done["text"] == text
    usage = body[-1]["response"]["usage"]
    assert usage["output_token_details"] == {
        "text_tokens": math.ceil(len(text) / 4),
        "audio_tokens": 0,
    }


def test_per_response_overrides_apply_to_that_response_only() -> None:
    protocol = make()
    head = send(
        protocol,
        {
            "type": "response.create",
            "response": {
                "output_modalities": ["text"],
                "instructions": "Hi",
                "metadata": {"k": "v"},
            },
        },
    )
    assert head[0]["response"]["output_modalities"] == ["text"]
    assert head[0]["response"]["metadata"] == {"k": "v"}
    usage = drain(protocol)[-1]["response"]["usage"]
    assert usage["input_token_details"]["text_tokens"] == 1
    assert protocol.config.output_modalities == ("audio",)
    error = error_of(send(protocol, {"type": "response.create", "response": {"colour": "red"}}))
    assert error["param"] == "response.colour"


def test_out_of_band_response_stays_out_of_the_conversation() -> None:
    protocol = make()
    head = send(protocol, {"type": "response.create", "response": {"conversation": "none"}})
    assert "conversation.item.added" not in types(head)
    body = drain(protocol)
    assert body[-1]["response"]["conversation_id"] is None
    assert "conversation.item.done" not in types(body)
    item_id = body[-1]["response"]["output"][0]["id"]
    error = error_of(send(protocol, {"type": "conversation.item.retrieve", "item_id": item_id}))
    assert error["param"] == "item_id"


def test_second_response_reports_the_previous_context_as_cached() -> None:
    protocol = make()
    manual(protocol)
    append(protocol, speech_pcm16(800))
    send(protocol, {"type": "input_audio_buffer.commit"})
    send(protocol, {"type": "response.create"})
    first = drain(protocol)[-1]["response"]["usage"]
    assert first["input_token_details"]["cached_tokens"] == 0
    send(protocol, user_text("and now?"))
    send(protocol, {"type": "response.create"})
    second = drain(protocol)[-1]["response"]["usage"]
    details = second["input_token_details"]
    # Context: instructions + the 800 ms turn (cached) + 1 s of assistant audio + the text.
    assert details["cached_tokens"] == first["input_tokens"]
    assert details["cached_tokens_details"] == {
        "text_tokens": math.ceil(len(INSTRUCTIONS) / 4),
        "audio_tokens": 8,
        "image_tokens": 0,
    }
    assert details["audio_tokens"] == 8 + 20
    assert details["text_tokens"] == math.ceil(len(INSTRUCTIONS) / 4) + 2
    assert details["cached_tokens"] <= second["input_tokens"]


def test_second_response_create_while_active_is_rejected() -> None:
    protocol = make()
    head = send(protocol, {"type": "response.create"})
    response_id = head[0]["response"]["id"]
    error = error_of(send(protocol, {"type": "response.create", "event_id": "evt_x"}))
    assert error["code"] == "conversation_already_has_active_response"
    assert error["message"] == (
        f"Conversation already has an active response in progress: {response_id}. "
        "Wait until the response is finished before creating a new one."
    )
    assert error["event_id"] == "evt_x"
    assert protocol.response_active


def test_cancel_closes_the_response_with_what_was_produced() -> None:
    protocol = make(reply_audio_ms=1000, audio_chunk_ms=100)
    send(protocol, {"type": "response.create"})
    sent = protocol.stream_step().events + protocol.stream_step().events
    events = send(protocol, {"type": "response.cancel"})
    assert types(events) == GA_SEQUENCE_TAIL
    response = events[-1]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert response["output"][0]["status"] == "incomplete"
    audio_deltas = [e for e in sent if e["type"] == "response.output_audio.delta"]
    assert len(audio_deltas) == 2
    assert response["usage"]["output_token_details"]["audio_tokens"] == 4  # 200 ms
    assert not protocol.response_active
    error = error_of(send(protocol, {"type": "response.cancel"}))
    assert error["code"] == "response_cancel_not_active"


def test_speech_interrupts_an_active_response() -> None:
    protocol = make()
    send(protocol, {"type": "response.create"})
    protocol.stream_step()
    events = append(protocol, speech_pcm16(400))
    assert types(events)[0] == "input_audio_buffer.speech_started"
    done = [e for e in events if e["type"] == "response.done"]
    assert done[0]["response"]["status_details"]["reason"] == "turn_detected"


def test_voice_cannot_change_after_assistant_audio() -> None:
    protocol = make()
    send(protocol, {"type": "response.create"})
    drain(protocol)
    error = error_of(
        send(
            protocol,
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"output": {"voice": "echo"}}},
            },
        )
    )
    assert error["code"] == "cannot_update_voice"


def test_ids_are_reproducible_with_a_seeded_factory() -> None:
    assert make().connect()[0]["session"]["id"] == make().connect()[0]["session"]["id"]


def test_client_audio_items_count_their_audio_and_respect_previous_item_id() -> None:
    protocol = make()
    manual(protocol)
    audio = base64.b64encode(speech_pcm16(500)).decode()
    item = {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]}
    added, _ = send(
        protocol, {"type": "conversation.item.create", "item": {**item, "id": "item_b"}}
    )
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]  # no echo
    first, _ = send(protocol, {**user_text("first", "item_a"), "previous_item_id": "root"})
    assert first["previous_item_id"] is None
    send(protocol, {"type": "response.create"})
    done = drain(protocol)[-1]["response"]
    assert done["usage"]["input_token_details"]["audio_tokens"] == 5
    assert (
        done["usage"]["input_token_details"]["text_tokens"] == math.ceil(len(INSTRUCTIONS) / 4) + 2
    )
    error = error_of(send(protocol, {**user_text("x"), "previous_item_id": "item_zzz"}))
    assert error["param"] == "previous_item_id"
