"""Reading GPT-Live's first frame, ``session.start``, soundly (no sockets)."""

from __future__ import annotations

import pytest

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
