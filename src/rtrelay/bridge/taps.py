"""Cheap byte tests that pick out the few frames the relay must understand.

A JSON string equal to ``"response.done"`` can only appear in a frame as those
exact bytes: inside another string its quotes would be escaped, and base64 audio
never contains a quote. So ``needle in frame`` is a sound pre-filter; only frames
that pass it are parsed, and the parsed ``type`` decides. Audio deltas, the bulk
of the traffic, are recognised by their first bytes and skip even the search.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = [
    "ClientTap",
    "ServerTap",
    "client_tap",
    "server_tap",
]

_RESPONSE_CREATE: Final = b'"response.create"'
_SESSION_UPDATE: Final = b'"session.update"'
_RESPONSE_DONE: Final = b'"response.done"'
_TRANSCRIPTION_DONE: Final = b'"conversation.item.input_audio_transcription.completed"'

# Server events that are never metered and make up almost all frames.
_BULK_PREFIXES: Final = (
    b'{"type":"response.output_audio.delta"',
    b'{"type":"response.audio.delta"',
    b'{"type":"response.output_audio_transcript.delta"',
    b'{"type":"response.audio_transcript.delta"',
    b'{"type":"response.output_text.delta"',
    b'{"type":"response.text.delta"',
)
_APPEND_PREFIX: Final = b'{"type":"input_audio_buffer.append"'

ClientTap = tuple[str, dict[str, Any]]
ServerTap = tuple[str, dict[str, Any]]


def _parse(frame: bytes) -> dict[str, Any] | None:
    try:
        event = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


_CLIENT_NEEDLES: Final = (
    (_RESPONSE_CREATE, "response.create"),
    (_SESSION_UPDATE, "session.update"),
)
_SERVER_NEEDLES: Final = (
    (_RESPONSE_DONE, "response.done"),
    (_TRANSCRIPTION_DONE, "conversation.item.input_audio_transcription.completed"),
)


def _match(
    frame: bytes, needles: tuple[tuple[bytes, str], ...]
) -> tuple[str, dict[str, Any]] | None:
    for needle, wanted in needles:
        if needle in frame:
            event = _parse(frame)
            if event is None or event.get("type") != wanted:
                return None
            return wanted, event
    return None


def client_tap(frame: bytes) -> ClientTap | None:
    """``("response.create" | "session.update", event)`` for frames the gate must see."""
    if frame.startswith(_APPEND_PREFIX):
        return None
    return _match(frame, _CLIENT_NEEDLES)


def server_tap(frame: bytes) -> ServerTap | None:
    """``(type, event)`` for ``response.done`` and transcription completions."""
    if frame.startswith(_BULK_PREFIXES):
        return None
    return _match(frame, _SERVER_NEEDLES)
