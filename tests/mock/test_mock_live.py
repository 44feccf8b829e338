"""The simulated GPT-Live session logic, without sockets or clocks."""

from __future__ import annotations

import base64
import itertools
import random
from typing import Any

import pytest
from mock_wire import append_audio, drain, error_of, send_event
from openai.types.live import ServerEvent as LiveServerEvent
from pydantic import TypeAdapter

from rtrelay.mock import LiveProtocol, silence_pcm16, speech_pcm16
from rtrelay.mock._audio import resample_pcm16
from rtrelay.mock._calls import parse_offer
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._speech import MAX_QUEUED, SpeechOutput

Event = dict[str, Any]
START = {
    "model": "gpt-live-1",
    "instructions": "Be brief.",
    "audio": {"output": {"voice": "cedar"}},
}
RESPONSES = {"type": "responses", "responses": {"model": "gpt-5.5", "instructions": "Use tools."}}


def make(**kwargs: Any) -> LiveProtocol:
    return LiveProtocol(now=1_700_000_000, ids=IdFactory(random.Random(7)), **kwargs)


def started(**session: Any) -> LiveProtocol:
    protocol = make()
    [event] = send_event(protocol, {"type": "session.start", "session": {**START, **session}})
    assert event["type"] == "session.started", event
    return protocol


def append(protocol: LiveProtocol, pcm: bytes) -> list[Event]:
    return append_audio(protocol, "session.input_audio.append", pcm)


def test_nothing_is_sent_before_session_start_and_started_reports_the_config() -> None:
    protocol = make()
    assert protocol.connect() == []
    replies = send_event(
        protocol, {"type": "session.start", "event_id": "c1", "session": {**START, "store": True}}
    )
    [event] = replies
    assert event["type"] == "session.started"
    assert event["client_event_id"] == "c1"
    session = event["session"]
    assert session["id"] == protocol.session_id
    assert session["id"].startswith("sess_")
    assert session["expires_at"] == 1_700_000_000 + 3600
    assert session["model"] == "gpt-live-1"
    assert session["status"] == "active"
    assert session["instructions"] == "Be brief."
    assert session["audio"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "output": {"voice": "cedar"},
    }
    assert session["store"] is True
    assert protocol.model == "gpt-live-1"


def test_defaults_voice_marin() -> None:
    protocol = make()
    [event] = send_event(protocol, {"type": "session.start", "session": {"model": "gpt-live-1"}})
    assert event["session"]["audio"]["output"]["voice"] == "marin"
    assert event["session"]["instructions"] is None


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({**START, "voice": "cedar"}, "unknown_parameter", "session.voice"),
        ({**START, "audio": {"output": {"voice": "x", "speed": 1}}}, "unknown_parameter",
         "session.audio.output.speed"),
        ({**START, "audio": {"input": {}}}, "unknown_parameter", "session.audio.input"),
        ({**START, "delegation": {"type": "client", "model": "x"}}, "unknown_parameter",
         "session.delegation.model"),
        ({**START, "model": "gpt-realtime"}, "invalid_model", "model"),
        ({"instructions": "x"}, "missing_required_parameter", "session.model"),
        ({**START, "instructions": 5}, "invalid_type", "session.instructions"),
        ({**START, "audio": {"format": {"type": "audio/pcm", "rate": 44100}}}, "invalid_value",
         "session.audio.format.rate"),
        ({**START, "delegation": {"type": "responses"}}, "missing_required_parameter",
         "session.delegation.responses"),
    ],
)  # fmt: skip
def test_session_start_is_strict(session: Event, code: str, param: str) -> None:
    protocol = make()
    start = {"type": "session.start", "event_id": "s", "session": session}
    error = error_of(send_event(protocol, start))
    assert (error["code"], error["param"]) == (code, param)
    assert error["type"] == "invalid_request_error"
    assert error["client_event_id"] == "s"
    assert not protocol.started


def test_a_realtime_model_in_session_start_is_invalid_model_naming_it() -> None:
    error = error_of(
        send_event(make(), {"type": "session.start", "session": {**START, "model": "gpt-realtime"}})
    )
    assert error["code"] == "invalid_model"
    assert "gpt-realtime" in error["message"]


@pytest.mark.parametrize(
    "event",
    [
        {"type": "session.input_audio.append", "audio": ""},
        {"type": "session.update", "session": {}},
        {"type": "response.create"},
        {"type": "session.close"},
    ],
)
def test_anything_before_session_start_is_an_error(event: Event) -> None:
    protocol = make()
    replies = send_event(protocol, {**event, "event_id": "e1"})
    error = error_of(replies)
    assert error["code"] == "session_not_started"
    assert replies[0]["client_event_id"] == "e1"
    assert not protocol.started
    assert not protocol.finished


def test_second_session_start_and_unknown_events_are_errors() -> None:
    protocol = started()
    assert error_of(send_event(protocol, {"type": "session.start", "session": START}))["code"] == (
        "session_already_started"
    )
    error = error_of(send_event(protocol, {"type": "input_audio_buffer.append", "audio": ""}))
    assert (error["code"], error["param"]) == ("invalid_event", "type")
    assert error_of(send_event(protocol, b"{nope"))["code"] == "invalid_event"
    assert error_of(protocol.receive_binary())["code"] == "invalid_event"


def test_a_turn_is_transcribed_and_answered_with_paced_audio_and_transcript() -> None:
    protocol = started()
    heard = append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
    assert heard, "server VAD ended the turn"
    assert {e["type"] for e in heard} == {"session.input_transcript.delta"}
    transcript = "".join(e["delta"] for e in heard)
    assert transcript.startswith("Hello,")
    assert all(e["end_ms"] >= e["start_ms"] for e in heard)
    assert protocol.response_active
    steps = []
    while protocol.response_active:
        steps.append(protocol.stream_step())
    assert steps[-1].finished
    events = [e for step in steps for e in step.events]
    audio = [e for e in events if e["type"] == "session.output_audio.delta"]
    words = [e for e in events if e["type"] == "session.output_transcript.delta"]
    pcm = b"".join(base64.b64decode(e["delta"]) for e in audio)
    assert len(pcm) == 1000 * 48  # reply_audio_ms of pcm16 at 24 kHz
    assert sum(s.duration_ms for s in steps) == pytest.approx(1000)
    assert len(audio) == 10  # one 100 ms chunk per step
    assert "start_ms" not in audio[0]  # primary WebSocket deltas carry no timestamps
    assert "".join(e["delta"] for e in words).startswith("Sure!")
    assert words[0]["start_ms"] >= heard[-1]["end_ms"]


def test_usage_seconds_count_input_received_and_output_sent() -> None:
    protocol = started()
    assert protocol.usage_event()["usage"] == {"seconds": 0.0}
    append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
    assert protocol.usage_seconds == pytest.approx(2.1)
    protocol.stream_step()
    protocol.stream_step()
    assert protocol.usage_seconds == pytest.approx(2.3)
    drain(protocol)
    event = protocol.usage_event()
    assert event["type"] == "session.usage.updated"
    assert event["usage"]["seconds"] == pytest.approx(3.1)


def test_muted_audio_counts_but_is_not_heard() -> None:
    protocol = started()
    assert [e["type"] for e in send_event(protocol, {"type": "session.input_audio.mute"})] == [
        "session.input_audio.muted"
    ]
    assert append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800)) == []
    assert protocol.usage_seconds == pytest.approx(2.1)
    assert not protocol.response_active
    send_event(protocol, {"type": "session.input_audio.unmute"})
    assert append(protocol, speech_pcm16(1000) + silence_pcm16(800))


def test_session_update_changes_delegation_and_triggers_only() -> None:
    protocol = started(delegation=RESPONSES)
    [updated] = send_event(
        protocol,
        {
            "type": "session.update",
            "event_id": "u1",
            "session": {
                "delegation": {"type": "responses", "responses": {"instructions": "New."}},
                "triggers": [],
            },
        },
    )
    assert updated["type"] == "session.updated"
    assert updated["client_event_id"] == "u1"
    delegation = updated["session"]["delegation"]
    assert delegation["responses"] == {"model": "gpt-5.5", "instructions": "New."}
    assert updated["session"]["triggers"] == []
    for field in ("model", "instructions", "audio", "input"):
        error = error_of(send_event(protocol, {"type": "session.update", "session": {field: "x"}}))
        assert (error["code"], error["param"]) == ("unknown_parameter", f"session.{field}")
        assert "cannot be changed" in error["message"]
    error = error_of(send_event(protocol, {"type": "session.update", "session": {"tools": []}}))
    assert (error["code"], error["param"]) == ("unknown_parameter", "session.tools")
    update = {"type": "session.update", "session": {"delegation": {"type": "client"}}}
    error = error_of(send_event(protocol, update))
    assert (error["code"], error["param"]) == ("invalid_value", "session.delegation.type")


def test_response_create_streams_a_delegated_response_with_token_usage() -> None:
    protocol = started(delegation=RESPONSES)
    append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
    events = send_event(protocol, {"type": "response.create", "event_id": "r1"})
    assert {e["type"] for e in events} == {"response.event"}
    assert all(e["client_event_id"] == "r1" for e in events)
    nested = [e["event"] for e in events]
    assert [n["type"] for n in nested] == [
        "response.created",
        "response.output_text.delta",
        "response.output_text.done",
        "response.completed",
    ]
    assert [n["sequence_number"] for n in nested] == [0, 1, 2, 3]
    completed = nested[-1]["response"]
    assert completed["status"] == "completed"
    assert completed["model"] == "gpt-5.5"
    assert completed["object"] == "response"
    usage = completed["usage"]
    # 10 framing tokens + "Use tools." (3) + the words heard ("Hello, can you hear": 5)
    assert usage["input_tokens"] == 10 + 3 + 5
    assert usage["output_tokens"] == -(-len(nested[2]["text"]) // 4)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert nested[0]["response"]["usage"] is None


def test_response_create_needs_responses_delegation() -> None:
    error = error_of(send_event(started(), {"type": "response.create"}))
    assert error["code"] == "delegation_required"


def test_session_close_reports_final_usage_and_finishes() -> None:
    protocol = started()
    append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
    protocol.stream_step()
    [closed] = send_event(protocol, {"type": "session.close", "event_id": "bye"})
    assert closed["type"] == "session.closed"
    assert closed["reason"] == "close_requested"
    assert closed["client_event_id"] == "bye"
    assert closed["usage"] == {"seconds": pytest.approx(2.2)}
    assert closed["session"]["id"] == protocol.session_id
    assert protocol.finished
    assert not protocol.response_active  # unspoken output is dropped
    assert error_of(send_event(protocol, {"type": "session.close"}))["code"] == "invalid_event"


@pytest.mark.parametrize(
    ("fields", "query"),
    [
        ({"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}, {"model": "gpt-live-1"}),
        (
            {
                "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
                "session": '{"model": "gpt-live-1"}',
            },
            {},
        ),
    ],
)
def test_a_live_model_is_refused_for_a_realtime_webrtc_call(
    fields: dict[str, str], query: dict[str, str]
) -> None:
    content_type = "multipart/form-data" if "session" in fields else "application/sdp"
    with pytest.raises(ProviderError) as refused:
        parse_offer(content_type, fields, query)
    assert refused.value.code == "invalid_model"
    assert "/v1/live/sessions" in refused.value.message


def test_pcm_at_16_khz_is_heard_and_spoken_at_16_khz() -> None:
    protocol = make()
    start = {**START, "audio": {"format": {"type": "audio/pcm", "rate": 16000}}}
    [event] = send_event(protocol, {"type": "session.start", "session": start})
    assert event["session"]["audio"]["format"] == {"type": "audio/pcm", "rate": 16000}
    turn = silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800)
    heard = []
    for i in range(0, len(turn), 4800):  # 100 ms appends, each resampled to 16 kHz
        audio = base64.b64encode(resample_pcm16(turn[i : i + 4800], 24000, 16000)).decode()
        heard += send_event(protocol, {"type": "session.input_audio.append", "audio": audio})
    assert heard
    assert protocol.usage_seconds == pytest.approx(2.1)
    deltas = [e for e in drain(protocol) if e["type"] == "session.output_audio.delta"]
    assert len(b"".join(base64.b64decode(e["delta"]) for e in deltas)) == 1000 * 32
    assert protocol.usage_seconds == pytest.approx(3.1)


def test_replies_waiting_to_be_spoken_are_bounded() -> None:
    output = SpeechOutput("audio/pcm", 100, None, lambda text, start, end: {"type": "t"})
    said = [output.say(f"u{i}", 200, 0.0) for i in range(MAX_QUEUED + 3)]
    assert said == [True] * MAX_QUEUED + [False] * 3
    ids = set()
    while output.active_id is not None:
        ids.add(output.active_id)
        output.step()
    assert len(ids) == MAX_QUEUED
    assert output.produced_ms == pytest.approx(200 * MAX_QUEUED)


DECISIONS = {
    "type": "decisions",
    "decisions": {
        "model": "gpt-5.5-mini",
        "questions": [
            {"type": "predicate", "name": "angry", "instructions": "Is the caller angry?"},
            {
                "type": "choice",
                "name": "topic",
                "instructions": "What is it about?",
                "choices": [{"value": "billing"}, {"value": "support"}, {"value": True}],
            },
            {
                "type": "score",
                "instructions": "How urgent?",
                "levels": [{"label": "low"}, {"label": "high"}],
            },
        ],
    },
}


def test_decision_create_answers_every_question_with_token_usage() -> None:
    protocol = started(delegation=DECISIONS)
    append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
    [event] = send_event(protocol, {"type": "decision.create", "event_id": "d1"})
    assert event["type"] == "decision.event"
    assert event["delegation_id"] is None
    assert event["event"]["type"] == "decision.completed"
    decision = event["event"]["decision"]
    assert decision["model"] == "gpt-5.5-mini"
    answers = decision["answers"]
    assert [a["type"] for a in answers] == ["predicate", "choice", "score"]
    assert [a["name"] for a in answers] == ["angry", "topic", None]
    assert answers[1]["choice"] == "billing"
    assert sum(p["probability"] for p in answers[1]["probabilities"]) == pytest.approx(1.0)
    assert [p["value"] for p in answers[2]["probabilities"]] == [0, 1]
    usage = decision["usage"]
    questions = "Is the caller angry? What is it about? How urgent?"
    # 10 framing tokens + the questions' instructions + the words heard ("Hello, can you hear")
    assert usage["input_tokens"] == 10 + -(-len(questions) // 4) + 5
    assert usage["output_tokens"] == 2 * 3
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    again = error_of(send_event(protocol, {"type": "decision.create", "event_id": "d1"}))
    assert (again["code"], again["param"]) == ("invalid_value", "event_id")
    assert error_of(send_event(protocol, {"type": "decision.create"}))["param"] == "event_id"


def test_decision_create_needs_decisions_delegation() -> None:
    error = error_of(send_event(started(), {"type": "decision.create", "event_id": "d"}))
    assert error["code"] == "delegation_required"
    assert "decision.create" in error["message"]


def test_every_event_validates_against_the_sdk_types() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(LiveServerEvent)
    events: list[Event] = []
    for delegation in (RESPONSES, DECISIONS):
        protocol = make(delegate_turns=True)
        events += send_event(
            protocol, {"type": "session.start", "session": {**START, "delegation": delegation}}
        )
        events += append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
        events += drain(protocol)
        events.append(protocol.usage_event())
        events += send_event(protocol, {"type": "response.create", "event_id": "r"})
        events += send_event(protocol, {"type": "decision.create", "event_id": "d"})
        events += send_event(protocol, {"type": "session.update", "session": {"triggers": []}})
        events += send_event(protocol, {"type": "session.input_audio.mute"})
        events += send_event(protocol, {"type": "session.commentary.append", "content": "Hm."})
        item = {"type": "message", "role": "user", "content": "Hi."}
        events += send_event(protocol, {"type": "decision.item.create", "item": item})
        events += send_event(protocol, {"type": "decision.item.delete", "item_id": "nope"})
        events += send_event(protocol, {"type": "session.close"})
    kinds = {e["type"] for e in events}
    assert {
        "response.event",
        "decision.event",
        "session.delegation.created",
        "session.commentary.appended",
        "decision.item.created",
        "error",
        "session.closed",
    } <= kinds
    for event in events:
        adapter.validate_python(event)


def test_transcript_triggers_fire_a_decision_once_per_utterance() -> None:
    questions = [{"type": "predicate", "name": "done", "instructions": "Finished?"}]
    triggers = [
        {"type": "decisions", "event_type": event_type, "decisions": {"questions": questions}}
        for event_type in ("session.input_transcript.delta", "session.output_transcript.delta")
    ]
    protocol = started(delegation=DECISIONS, triggers=triggers)
    heard = append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
    spoken = drain(protocol)
    for events, source_type in (
        (heard, "session.input_transcript.delta"),
        (spoken, "session.output_transcript.delta"),
    ):
        [fired] = [e for e in events if e["type"] == "decision.event"]
        deltas = [e for e in events if e["type"] == source_type]
        assert events.index(fired) > events.index(deltas[-1])
        assert fired["source_event_id"] == deltas[-1]["event_id"]
        assert fired["source_event_type"] == source_type
        assert fired["trigger_id"].startswith("trig_")
        decision = fired["event"]["decision"]
        assert decision["model"] == "gpt-5.5-mini"  # the delegation's Decisions model
        assert [a["name"] for a in decision["answers"]] == ["done"]
        assert decision["usage"]["total_tokens"] > 0
    off = send_event(protocol, {"type": "session.update", "session": {"triggers": []}})
    assert off[0]["session"]["triggers"] == []
    append(protocol, speech_pcm16(1000) + silence_pcm16(800))
    assert "decision.event" not in {e["type"] for e in drain(protocol)}


@pytest.mark.parametrize(
    ("triggers", "param"),
    [
        ({}, "session.triggers"),
        ([{"type": "responses", "event_type": "session.input_transcript.delta",
           "decisions": {"questions": []}}], "session.triggers[0].type"),
        ([{"type": "decisions", "event_type": "session.closed",
           "decisions": {"questions": []}}], "session.triggers[0].event_type"),
        ([{"type": "decisions", "event_type": "session.input_transcript.delta",
           "decisions": {"questions": []}}] * 2, "session.triggers[1].event_type"),
        ([{"type": "decisions", "event_type": "session.input_transcript.delta",
           "decisions": {"questions": [], "model": "x"}}], "session.triggers[0].decisions.model"),
    ],
)  # fmt: skip
def test_triggers_are_checked(triggers: Any, param: str) -> None:
    start = {"type": "session.start", "session": {**START, "triggers": triggers}}
    assert error_of(send_event(make(), start))["param"] == param


def test_context_appends_are_acknowledged_at_the_session_time() -> None:
    protocol = started()
    append(protocol, silence_pcm16(500))
    for kind in ("instructions", "thinking", "commentary"):
        event = {"type": f"session.{kind}.append", "event_id": kind, "content": "Be kind."}
        [ack] = send_event(protocol, event)
        assert ack["type"] == f"session.{kind}.appended"
        assert (ack["start_ms"], ack["end_ms"], ack["client_event_id"]) == (500, 500, kind)
    missing = error_of(send_event(protocol, {"type": "session.thinking.append"}))
    assert missing["param"] == "content"


@pytest.mark.parametrize(
    ("delegation", "answer"),
    [(RESPONSES, "response.event"), (DECISIONS, "decision.event"), ({"type": "client"}, None)],
)
def test_delegate_turns_hands_each_turn_to_the_delegate(
    delegation: dict[str, Any], answer: str | None
) -> None:
    protocol = make(delegate_turns=True)
    start = {"type": "session.start", "session": {**START, "delegation": delegation}}
    send_event(protocol, start)
    events = append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
    [created] = [e for e in events if e["type"] == "session.delegation.created"]
    task = created["delegation"]
    assert task["id"].startswith("deleg_")
    assert (task["type"], task["target"]) == ("delegation", delegation["type"])
    assert created["offset_ms"] > 0
    answers = [e for e in events if e["type"] in ("response.event", "decision.event")]
    if answer is None:
        assert answers == []
        return
    assert {e["type"] for e in answers} == {answer}
    assert all(e["delegation_id"] == task["id"] for e in answers)
    last = answers[-1]["event"]
    completed = last["response"] if answer == "response.event" else last["decision"]
    assert completed["usage"]["total_tokens"] > 0
    if answer == "response.event":
        assert completed["id"] == task["response_id"]


def test_turns_are_not_delegated_by_default() -> None:
    protocol = started(delegation=RESPONSES)
    events = append(protocol, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
    assert {e["type"] for e in events} == {"session.input_transcript.delta"}


def test_items_for_the_delegates_count_in_their_usage() -> None:
    protocol = started(delegation=DECISIONS)
    before = send_event(protocol, {"type": "decision.create", "event_id": "a"})
    item = {"type": "message", "role": "user", "content": "My order number is 12345678."}
    [created] = send_event(
        protocol, {"type": "decision.item.create", "event_id": "i", "item": item}
    )
    assert created["type"] == "decision.item.created"
    assert created["client_event_id"] == "i"
    item_id = created["item"]["id"]
    assert item_id.startswith("item_")
    after = send_event(protocol, {"type": "decision.create", "event_id": "b"})
    tokens = [e[0]["event"]["decision"]["usage"]["input_tokens"] for e in (before, after)]
    assert tokens[1] == tokens[0] + 7  # the 28 characters of the message
    [deleted] = send_event(protocol, {"type": "decision.item.delete", "item_id": item_id})
    assert (deleted["type"], deleted["item_id"]) == ("decision.item.deleted", item_id)
    again = error_of(send_event(protocol, {"type": "decision.item.delete", "item_id": item_id}))
    assert (again["code"], again["param"]) == ("invalid_value", "item_id")
    wrong = error_of(send_event(protocol, {"type": "response.item.create", "item": item}))
    assert wrong["code"] == "delegation_required"

    responses = started(delegation=RESPONSES)
    output = {"type": "function_call_output", "call_id": "c1", "output": "Sunny, 21 degrees."}
    assert send_event(responses, {"type": "response.item.create", "item": output}) == []
    events = send_event(responses, {"type": "response.create"})
    usage = events[-1]["event"]["response"]["usage"]
    assert usage["input_tokens"] == 10 + 3 + 5  # framing, "Use tools.", the tool output
    bad = error_of(send_event(responses, {"type": "response.item.create", "item": {"type": "x"}}))
    assert bad["param"] == "item.type"


def test_webrtc_sessions_can_reflect_their_audio_for_sidebands() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(LiveServerEvent)
    protocol = make(transport="webrtc", reflect_audio=True)
    protocol.start(START)
    heard = []
    turn = silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(850)
    for i in range(0, len(turn), 960):  # 20 ms frames, as a media track delivers them
        heard += protocol.receive_audio(turn[i : i + 960])
    inputs = protocol.reflected()
    assert [e["type"] for e in inputs] == ["session.input_audio.append"] * 21  # 2.15 s
    assert b"".join(base64.b64decode(e["audio"]) for e in inputs) == turn[: 21 * 4800]
    spoken = drain(protocol)
    outputs = protocol.reflected()
    assert {e["type"] for e in outputs} == {"session.output_audio.delta"}
    assert "session.output_audio.delta" not in {e["type"] for e in spoken}
    assert outputs[0]["start_ms"] >= heard[-1]["end_ms"]
    assert all(a["end_ms"] == b["start_ms"] for a, b in itertools.pairwise(outputs))
    assert sum(len(base64.b64decode(e["delta"])) for e in outputs) == 1000 * 48
    assert protocol.reflected() == []  # taken once
    for event in inputs + outputs:
        adapter.validate_python(event)
    plain = make(transport="webrtc")
    plain.start(START)
    plain.receive_audio(turn)
    drain(plain)
    assert plain.reflected() == []
