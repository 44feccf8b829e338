"""What the I/O half needs from a session's protocol logic, whichever protocol it speaks.

``RealtimeProtocol``, ``LiveProtocol`` and ``TranslationProtocol`` are sans-I/O state
machines; ``Connection`` (WebSocket) and the pacing loop drive any of them through this
interface, so socket handling, pacing and fault injection exist once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

import orjson

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import AudioFormat
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._response import Event, Step

__all__ = [
    "Finalising",
    "Inbound",
    "MediaProtocol",
    "SessionProtocol",
    "Ticker",
    "client_event_id",
    "dispatch",
    "expiry_events",
    "final_events",
]

Handler = Callable[[dict[str, Any]], list[Event]]


@dataclass(frozen=True, slots=True)
class Inbound:
    """What one client frame produced: the parsed event (if any) and the replies to send."""

    event: dict[str, Any] | None
    replies: list[Event]


def client_event_id(event: Mapping[str, Any]) -> str | None:
    """The client's ``event_id``, which errors and replies quote back."""
    value = event.get("event_id")
    return value if isinstance(value, str) else None


def _accept(kind: str) -> None:
    return None


def dispatch(
    data: str | bytes,
    handlers: Mapping[str, Handler],
    error_event: Callable[[ProviderError, str | None], Event],
    guard: Callable[[str], None] = _accept,
) -> Inbound:
    """Parse one client text frame and run its handler; never raises for client input.

    Args:
        data: the frame.
        handlers: by event type; a handler raises ``ProviderError`` to answer with an error.
        error_event: renders an error in the protocol's shape, quoting the client event id.
        guard: raises ``ProviderError`` when a known event type is not allowed now.
    """
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        error = errors.invalid_event("Invalid JSON in the event: the event could not be parsed.")
        return Inbound(None, [error_event(error, None)])
    if not isinstance(event, dict):
        error = errors.invalid_event("Invalid event: expected a JSON object.")
        return Inbound(None, [error_event(error, None)])
    kind = event.get("type")
    handler = handlers.get(kind) if isinstance(kind, str) else None
    try:
        if kind is None:
            raise errors.invalid_event("The 'type' field is missing.", param="type")
        if handler is None:
            supported = ", ".join(f"'{name}'" for name in handlers)
            raise errors.invalid_event(
                f"Invalid value: '{kind}'. Supported values are: {supported}.", param="type"
            )
        guard(kind)
        replies = handler(event)
    except ProviderError as error:
        replies = [error_event(error, client_event_id(event))]
    return Inbound(event, replies)


class SessionProtocol(Protocol):
    """One session's logic: client frames in, server events out, output streamed in steps."""

    @property
    def session_id(self) -> str: ...

    @property
    def response_active(self) -> bool:
        """Whether output is waiting to be streamed by ``stream_step()``."""
        ...

    @property
    def active_response_id(self) -> str | None:
        """What is being streamed; a new id restarts the pacing clock."""
        ...

    @property
    def finished(self) -> bool:
        """The session ended cleanly (``session.closed`` sent): close the socket with 1000."""
        ...

    def connect(self) -> list[Event]: ...

    def receive_text(self, data: str | bytes) -> Inbound: ...

    def receive_binary(self) -> list[Event]: ...

    def stream_step(self) -> Step: ...

    def error(self, error: ProviderError) -> Event: ...


class MediaProtocol(SessionProtocol, Protocol):
    """A session a WebRTC peer can run: audio in from a media track, audio out on one."""

    @property
    def active_audio_format(self) -> AudioFormat | None:
        """The format of what ``stream_step()`` yields as ``Step.audio`` right now."""
        ...

    def receive_audio(self, pcm16: bytes) -> list[Event]:
        """Input audio heard on the media track (pcm16, 24 kHz)."""
        ...

    def playout_events(self, kind: str, response_id: str) -> list[Event]:
        """What to announce when the track starts, stops or clears a reply's audio
        (``output_audio_buffer.started|stopped|cleared``); nothing if the protocol has no
        such events."""
        ...

    def reflected(self) -> list[Event]:
        """Events for the sidebands only, produced since the last call (GPT-Live's
        reflected audio); taken, so each is delivered once."""
        ...


@runtime_checkable
class Finalising(Protocol):
    """A protocol whose sessions end with a final event however they end (GPT-Live's
    ``session.closed``, with a reason and the final usage)."""

    @property
    def finished(self) -> bool: ...

    def closed_events(self, reason: str) -> list[Event]:
        """The final event(s) for an end the client did not ask for; ``finished`` after."""
        ...


# How a WebRTC call's end reads in a Live session.closed (session_closed_event.py).
_CLOSED_REASONS: Final = {
    "hangup": "close_requested",
    "reject": "close_requested",
    "expired": "expired",
}


def expiry_events(protocol: SessionProtocol, seconds: float) -> list[Event]:
    """What a session hears at the maximum duration: Realtime's ``session_expired`` error
    (protocol.md §3); a finalising protocol's final event instead (``final_events``)."""
    if isinstance(protocol, Finalising):
        return final_events(protocol, "expired")
    return [protocol.error(errors.session_expired(seconds))]


def final_events(protocol: SessionProtocol, end_reason: str) -> list[Event]:
    """The final event of a finalising session ended for ``end_reason`` (a
    ``CallRecord.end_reason``), unless it already finished; nothing for other protocols."""
    if not isinstance(protocol, Finalising) or protocol.finished:
        return []
    return protocol.closed_events(_CLOSED_REASONS.get(end_reason, "connection_lost"))


@dataclass(frozen=True, slots=True)
class Ticker:
    """Events a session sends unprompted every ``interval`` seconds (Live usage updates)."""

    interval: float
    tick: Callable[[], list[Event]]
