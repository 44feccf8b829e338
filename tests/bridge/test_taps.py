"""The byte taps decide on the event type the provider will act on, whatever the spelling."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtrelay.bridge.taps import (
    AUDIO_BYTES,
    CHECKED_CLIENT_EVENTS,
    LIVE_CHECKED_CLIENT_EVENTS,
    TRANSLATION_APPEND,
    client_tap,
    live_client_tap,
    live_server_tap,
    server_tap,
    translation_client_tap,
    translation_server_tap,
)
from rtrelay.errors import InvalidEvent


def frame(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


@pytest.mark.parametrize("kind", sorted(CHECKED_CLIENT_EVENTS))
def test_client_events_the_gate_needs_are_picked(kind: str) -> None:
    assert client_tap(frame({"type": kind, "event_id": "e1"})) == (
        kind,
        {"type": kind, "event_id": "e1"},
    )


def test_type_after_a_nested_object_is_still_found() -> None:
    raw = b'{"response": {"metadata": {"type": "x"}}, "type": "response.create"}'
    tap = client_tap(raw)
    assert tap is not None and not isinstance(tap, InvalidEvent)
    assert tap[0] == "response.create"


def test_the_name_inside_a_string_is_not_a_match() -> None:
    text = frame({"type": "conversation.item.create", "text": 'say "response.create" please'})
    assert client_tap(text) is None
    spaced = b'{"type": "conversation.item.create", "note": "response.create"}'
    assert client_tap(spaced) is None


def test_an_escaped_type_is_decided_on_its_value() -> None:
    tap = client_tap(b'{"type":"response\\u002ecreate"}')
    assert tap is not None and not isinstance(tap, InvalidEvent)
    assert tap[0] == "response.create"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"input_audio_buffer.append","type":"response.create"}',
        b'{"type":"input_audio_buffer.append","audio":"AAAA","type":"response.create"}',
        b'{"type":"response.create","type":"input_audio_buffer.append"}',
        b'{"type":"input_audio_buffer.append","TYPE":"response.create"}',
        b'{"type":"input_audio_buffer.append","t\\u0079pe":"response.create"}',
    ],
)
def test_a_repeated_type_key_is_refused_not_forwarded(raw: bytes) -> None:
    assert isinstance(client_tap(raw), InvalidEvent)


@pytest.mark.parametrize(
    "raw", [b"not json", b'["response.create"]', b'{"type": 5}', b'{"event_id": "x"}', b"\xff"]
)
def test_what_is_not_one_json_event_is_refused(raw: bytes) -> None:
    assert isinstance(client_tap(raw), InvalidEvent)


@pytest.mark.parametrize("dumps", [orjson.dumps, lambda e: json.dumps(e).encode()])
def test_audio_appends_as_clients_write_them_take_the_fast_path(dumps: Any) -> None:
    audio = base64.b64encode(bytes(range(256)) * 40).decode()
    for event in (
        {"type": "input_audio_buffer.append", "audio": audio},
        {"type": "input_audio_buffer.append", "audio": audio, "event_id": "evt_1"},
    ):
        assert client_tap(dumps(event)) is None


def test_a_huge_frame_that_only_looks_like_audio_is_parsed() -> None:
    raw = b'{"type":"input_audio_buffer.append","audio":"' + b"A" * 1_000_000
    raw += b'","response":{},"type":"response.create"}'
    assert isinstance(client_tap(raw), InvalidEvent)


def test_server_audio_deltas_skip_the_search() -> None:
    delta = b'{"type":"response.output_audio.delta","delta":"' + b"A" * 10_000 + b'"}'
    assert server_tap(delta) is None


@pytest.mark.parametrize(
    "kind",
    [
        "response.created",
        "response.done",
        "conversation.item.input_audio_transcription.completed",
    ],
)
def test_metered_server_events_are_picked(kind: str) -> None:
    tap = server_tap(frame({"type": kind, "event_id": "event_1"}))
    assert tap is not None
    assert tap[0] == kind


def test_malformed_server_frames_are_forwarded_not_parsed() -> None:
    assert server_tap(b'{"type":"response.done", oops') is None


# -- property: no spelling forwards a checked event unchecked -------------------------------

_TYPES = [*sorted(CHECKED_CLIENT_EVENTS), "input_audio_buffer.append", "conversation.item.create"]
_WS = st.sampled_from(["", " ", "\n", "\t ", "  "])


@st.composite
def _string(draw: st.DrawFn, text: str) -> str:
    """A JSON string literal for ``text``, with any characters escaped."""
    out = []
    for ch in text:
        how = draw(st.sampled_from(["plain", "plain", "u", "U"]))
        if ch in '"\\':
            out.append("\\" + ch)
        elif how == "u":
            out.append(f"\\u{ord(ch):04x}")
        elif how == "U":
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@st.composite
def _value(draw: st.DrawFn) -> str:
    return draw(
        st.one_of(
            st.just('"' + "QUFB" * draw(st.integers(0, 64)) + '"'),
            _string(draw(st.text(max_size=12))),
            st.just('{"type":"x","a":[1,2]}'),
            st.integers(-5, 5).map(str),
            st.just("null"),
        )
    )


@st.composite
def spelled_event(draw: st.DrawFn, kinds: list[str] = _TYPES) -> tuple[bytes, list[str]]:
    """A JSON object whose top-level ``type`` key(s) take ``types``, spelled any way."""
    types = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3))
    members = [("type", t) for t in types]
    extra = draw(st.lists(st.sampled_from(["event_id", "audio", "response", "item"]), max_size=3))
    members += [(k, None) for k in extra]
    members = draw(st.permutations(members))
    parts = []
    for key, value in members:
        key_spelling = key
        if key == "type":
            key_spelling = draw(st.sampled_from(["type", "type", "Type", "TYPE"]))
        rendered_value = draw(_string(value)) if value is not None else draw(_value())
        parts.append(
            draw(_WS)
            + draw(_string(key_spelling))
            + draw(_WS)
            + ":"
            + draw(_WS)
            + rendered_value
            + draw(_WS)
        )
    raw = "{" + ",".join(parts) + "}"
    return raw.encode(), types


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spelled_event())
def test_no_spelling_forwards_a_checked_event_unchecked(case: tuple[bytes, list[str]]) -> None:
    raw, types = case
    tap = client_tap(raw)
    # A parser keeping the first key, the last key, or matching keys case-insensitively
    # must never act on a checked type the relay let through unchecked.
    if tap is None:
        assert not CHECKED_CLIENT_EVENTS & set(types), raw
    elif not isinstance(tap, InvalidEvent):
        assert len(types) == 1
        assert tap[0] == types[0]


_LIVE_TYPES = [*sorted(LIVE_CHECKED_CLIENT_EVENTS), "session.input_audio.append", "session.close"]
_TRANSLATION_TYPES = ["session.update", TRANSLATION_APPEND, "session.close"]
"""Translation's appends are checked too: the meter bills the audio they carry."""


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spelled_event(_LIVE_TYPES))
def test_no_spelling_forwards_a_checked_live_event_unchecked(
    case: tuple[bytes, list[str]],
) -> None:
    raw, types = case
    tap = live_client_tap(raw)
    if tap is None:
        assert not LIVE_CHECKED_CLIENT_EVENTS & set(types), raw
    elif not isinstance(tap, InvalidEvent):
        assert (len(types), tap[0]) == (1, types[0]), raw


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spelled_event(_TRANSLATION_TYPES))
def test_no_spelling_forwards_translation_audio_unmetered(case: tuple[bytes, list[str]]) -> None:
    """An append the meter does not see is audio translated for free."""
    raw, types = case
    tap = translation_client_tap(raw)
    if tap is None:
        assert not {"session.update", TRANSLATION_APPEND} & set(types), raw
    elif not isinstance(tap, InvalidEvent):
        assert (len(types), tap[0]) == (1, types[0]), raw


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(sorted(CHECKED_CLIENT_EVENTS)))
def test_bytes_around_a_checked_event_never_hide_it(junk: bytes, kind: str) -> None:
    raw = b'{"type":"input_audio_buffer.append","audio":"' + junk + b'","type":"' + kind.encode()
    raw += b'"}'
    tap = client_tap(raw)
    assert tap is not None
    assert isinstance(tap, InvalidEvent) or tap[0] == kind


# -- GPT-Live and translation ----------------------------------------------------------------


@pytest.mark.parametrize("dumps", [orjson.dumps, lambda e: json.dumps(e).encode()])
def test_live_audio_appends_take_the_fast_path(dumps: Any) -> None:
    audio = base64.b64encode(bytes(960)).decode()
    for event in (
        {"type": "session.input_audio.append", "audio": audio},
        {"type": "session.input_audio.append", "audio": audio, "event_id": "evt_1"},
    ):
        assert live_client_tap(dumps(event)) is None


@pytest.mark.parametrize("kind", sorted(LIVE_CHECKED_CLIENT_EVENTS))
def test_live_client_events_the_gate_needs_are_picked(kind: str) -> None:
    assert live_client_tap(frame({"type": kind})) == (kind, {"type": kind})


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"session.input_audio.append","type":"response.create"}',
        b'{"type":"session.input_audio.append","TYPE":"response.create"}',
        b'{"type":"session.input_audio.append","t\\u0079pe":"response.create"}',
    ],
)
def test_live_a_repeated_type_key_is_refused(raw: bytes) -> None:
    assert isinstance(live_client_tap(raw), InvalidEvent)


def test_live_response_create_is_decided_on_its_value() -> None:
    tap = live_client_tap(b'{"type":"response\\u002ecreate"}')
    assert tap == ("response.create", {"type": "response.create"})


def test_live_server_tap_picks_usage_start_and_finished_delegated_responses() -> None:
    usage = {"type": "session.usage.updated", "event_id": "e", "usage": {"seconds": 3.5}}
    assert live_server_tap(frame(usage)) == ("session.usage.updated", usage)
    started = {"type": "session.started", "event_id": "e", "session": {"model": "gpt-live-1"}}
    assert live_server_tap(frame(started)) == ("session.started", started)
    done = {
        "type": "response.event",
        "event_id": "e",
        "event": {"type": "response.completed", "response": {"id": "r", "usage": {}}},
    }
    assert live_server_tap(frame(done)) == ("response.event", done)
    closed = {"type": "session.closed", "reason": "expired", "usage": {"seconds": 9.5}}
    assert live_server_tap(frame(closed)) == ("session.closed", closed)
    decided = {
        "type": "decision.event",
        "event_id": "e",
        "event": {"type": "decision.completed", "decision": {"model": "m", "usage": {}}},
    }
    assert live_server_tap(frame(decided)) == ("decision.event", decided)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "session.output_audio.delta", "delta": "AAAA"},
        {"type": "session.output_transcript.delta", "delta": '"session.usage.updated"'},
        {"type": "response.event", "event": {"type": "response.output_text.delta"}},
        {"type": "response.event", "event": {"type": "response.completed", "response": {}}},
        {"type": "decision.event", "event": {"type": "decision.completed", "decision": {}}},
        {"type": "decision.event", "event": "decision.completed"},
        {"type": "session.updated", "note": "session.usage.updated"},
        {"type": "error", "error": {"message": "response.event"}},
    ],
)
def test_live_server_tap_skips_what_carries_no_usage(event: dict[str, Any]) -> None:
    assert live_server_tap(frame(event)) is None


def test_live_server_tap_decides_on_the_type_whichever_name_is_found_first() -> None:
    # A usage event whose fields happen to hold another wanted name is still a usage event.
    event = {"type": "session.usage.updated", "usage": {"seconds": 1}, "x": "response.event"}
    assert live_server_tap(frame(event)) == ("session.usage.updated", event)


@given(
    audio=st.binary(max_size=4000),
    event_id=st.one_of(st.none(), st.text(alphabet="abc_123", max_size=12)),
    spaced=st.booleans(),
)
def test_translation_appends_are_measured_exactly_without_parsing(
    audio: bytes, event_id: str | None, spaced: bool
) -> None:
    event: dict[str, Any] = {
        "type": "session.input_audio_buffer.append",
        "audio": base64.b64encode(audio).decode(),
    }
    if event_id is not None:
        event["event_id"] = event_id
    raw = json.dumps(event).encode() if spaced else orjson.dumps(event)
    assert translation_client_tap(raw) == (TRANSLATION_APPEND, {AUDIO_BYTES: len(audio)})
    # The same append escaped takes the parsing path and measures the same.
    escaped = raw.replace(b"session.input", b"session\\u002einput", 1)
    assert translation_client_tap(escaped) == (TRANSLATION_APPEND, {AUDIO_BYTES: len(audio)})


def test_translation_session_update_is_checked_and_the_server_is_not_metered() -> None:
    update = {"type": "session.update", "session": {"audio": {"output": {"language": "de"}}}}
    assert translation_client_tap(frame(update)) == ("session.update", update)
    assert translation_client_tap(frame({"type": "session.close"})) is None
    assert isinstance(translation_client_tap(b"[1]"), InvalidEvent)
    assert translation_server_tap(frame({"type": "session.created"})) is None


def test_translation_append_with_audio_that_is_not_a_string_measures_nothing() -> None:
    raw = frame({"type": TRANSLATION_APPEND, "audio": 5})
    assert translation_client_tap(raw) == (TRANSLATION_APPEND, {AUDIO_BYTES: 0})


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"session.input_audio_buffer.append","audio":null,"event_id":"abcdefgh"}',
        b'{"type":"session.input_audio_buffer.append","audio":5}',
        b'{"type":"session.input_audio_buffer.append","audio" : ""}',
    ],
)
def test_translation_append_without_audio_text_measures_nothing_on_the_fast_path(
    raw: bytes,
) -> None:
    assert translation_client_tap(raw) == (TRANSLATION_APPEND, {AUDIO_BYTES: 0})
