"""The byte taps pick out exactly the frames the relay must understand."""

from __future__ import annotations

import orjson
import pytest

from rtrelay.bridge.taps import client_tap, server_tap


def frame(event: dict) -> bytes:  # type: ignore[type-arg]
    return orjson.dumps(event)


@pytest.mark.parametrize("kind", ["response.create", "session.update"])
def test_client_events_the_gate_needs_are_picked(kind: str) -> None:
    assert client_tap(frame({"type": kind, "event_id": "e1"})) == (
        kind,
        {"type": kind, "event_id": "e1"},
    )


def test_type_after_a_nested_object_is_still_found() -> None:
    # A client cannot dodge the budget check by putting "type" last.
    raw = b'{"response": {"metadata": {"type": "x"}}, "type": "response.create"}'
    tap = client_tap(raw)
    assert tap is not None
    assert tap[0] == "response.create"


def test_the_name_inside_a_string_is_not_a_match() -> None:
    text = frame({"type": "conversation.item.create", "text": 'say "response.create" please'})
    assert client_tap(text) is None
    spaced = b'{"type": "conversation.item.create", "note": "response.create"}'
    assert client_tap(spaced) is None  # matched bytes, but parsed type decides


def test_audio_appends_and_deltas_skip_the_search() -> None:
    append = b'{"type":"input_audio_buffer.append","audio":"' + b"A" * 10_000 + b'"}'
    assert client_tap(append) is None
    delta = b'{"type":"response.output_audio.delta","delta":"' + b"A" * 10_000 + b'"}'
    assert server_tap(delta) is None


@pytest.mark.parametrize(
    "kind", ["response.done", "conversation.item.input_audio_transcription.completed"]
)
def test_metered_server_events_are_picked(kind: str) -> None:
    tap = server_tap(frame({"type": kind, "event_id": "event_1"}))
    assert tap is not None
    assert tap[0] == kind


def test_malformed_frames_are_forwarded_not_parsed() -> None:
    assert server_tap(b'{"type":"response.done", oops') is None
    assert client_tap(b'["response.create"]') is None
