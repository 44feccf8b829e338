"""Reading GPT-Live's first frame, ``session.start``, soundly (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtrelay.edge.live import read_session_start
from rtrelay.errors import InvalidEvent, MissingModel, RelayError


def test_the_model_and_the_client_event_id_are_read() -> None:
    frame = b'{"type":"session.start","event_id":"evt_1","session":{"model":"gpt-live-1"}}'
    start = read_session_start(frame)
    assert (start.model, start.client_event_id, start.error) == ("gpt-live-1", "evt_1", None)


def test_escaped_spellings_are_read_as_the_provider_reads_them() -> None:
    frame = b'{"type":"session\\u002estart","session":{"mod\\u0065l":"gpt-live-1"}}'
    start = read_session_start(frame)
    assert (start.model, start.error) == ("gpt-live-1", None)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        # two parsers could admit one model and run another: refused, not guessed
        (b'{"type":"session.start","session":{"model":"gpt-live-1","model":"x"}}', InvalidEvent),
        (b'{"type":"session.start","session":{"model":"gpt-live-1","MODEL":"x"}}', InvalidEvent),
        (b'{"type":"session.start","type":"session.start","session":{"model":"m"}}', InvalidEvent),
        (b'{"type":"session.start","session":{"model":"m"},"session":{"model":"x"}}', InvalidEvent),
        (b'{"type":"session.update","session":{"model":"gpt-live-1"}}', InvalidEvent),
        (b'{"type":"session.start"', InvalidEvent),
        (b"\xff\xfe", InvalidEvent),
        (b'["session.start"]', InvalidEvent),
        (b'{"type":"session.start","session":{}}', MissingModel),
        (b'{"type":"session.start","session":{"model":""}}', MissingModel),
        (b'{"type":"session.start","session":{"model":7}}', MissingModel),
        (b'{"type":"session.start"}', MissingModel),
    ],
)
def test_a_frame_that_is_not_one_clear_session_start_is_refused(
    frame: bytes, error: type[RelayError]
) -> None:
    refused = read_session_start(frame).error
    assert type(refused) is error
    assert refused.close_code == 4400


def test_a_refused_session_start_keeps_its_event_id_for_the_answer() -> None:
    start = read_session_start(b'{"type":"session.start","event_id":"evt_9","session":{}}')
    assert (start.client_event_id, type(start.error)) == ("evt_9", MissingModel)


def _pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs


def possible_models(frame: bytes) -> set[str]:
    """Every ``session.model`` some reasonable parser could read: first or last of repeated
    keys, keys matched case-insensitively."""
    try:
        top = json.loads(frame, object_pairs_hook=_pairs)
    except ValueError:
        return set()
    models: set[str] = set()
    for key, session in top if isinstance(top, list) else ():
        if key.lower() == "session" and isinstance(session, list):
            models |= {v for k, v in session if k.lower() == "model" and isinstance(v, str)}
    return models


_MODELS = st.sampled_from(["gpt-live-1", "gpt-realtime", "gpt-live-9", ""])


@st.composite
def spelled_start(draw: st.DrawFn) -> bytes:
    """A session.start whose keys may repeat, change case or be escaped."""

    def key(name: str) -> str:
        spelled = draw(st.sampled_from([name, name, name.upper(), name.title()]))
        if draw(st.booleans()):
            spelled = spelled[:-1] + f"\\u{ord(spelled[-1]):04x}"
        return json.dumps(spelled).replace("\\\\u", "\\u")

    session = [
        f"{key('model')}:{json.dumps(draw(_MODELS))}" for _ in range(draw(st.integers(1, 2)))
    ]
    session += draw(st.lists(st.just('"instructions":"hi"'), max_size=1))
    members = [f'{key("type")}:"session.start"', f"{key('session')}:{{{','.join(session)}}}"]
    if draw(st.booleans()):
        members.append(f"{key('session')}:{{{key('model')}:{json.dumps(draw(_MODELS))}}}")
    return ("{" + ",".join(draw(st.permutations(members))) + "}").encode()


@settings(max_examples=1000, deadline=None)
@given(spelled_start())
def test_the_model_admitted_is_the_model_any_parser_reads(frame: bytes) -> None:
    start = read_session_start(frame)
    if start.error is None:
        assert possible_models(frame) == {start.model}, frame
