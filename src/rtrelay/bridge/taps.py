"""Deciding, cheaply and soundly, which frames the relay must understand.

**Client frames decide money**, so the decision is made on the event type the
provider will act on, never on how the frame happens to be spelled. A byte
search for ``"response.create"`` is not enough: ``"response\\u002ecreate"`` is
the same JSON string, and ``{"type":"input_audio_buffer.append","type":
"response.create"}`` is a ``response.create`` to a parser that keeps the last
key. So every client frame is parsed, except the one shape that makes up almost
all traffic and can be proven harmless from its bytes alone: a plain audio append
(see ``_is_plain_append``). A parsed frame must be a JSON object with exactly one
``type`` key (compared case-insensitively, so no parser's reading differs); any
other frame is refused as ``invalid_event`` and not forwarded, since the relay
cannot know what the provider would make of it.

**Server frames** come from the provider, who bills us by the same events, so a
needle search is a sound pre-filter there: a JSON string equal to
``"response.done"`` appears in a frame as those exact bytes when the provider
writes plain JSON, and audio deltas, the bulk of the traffic, are recognised by
their first bytes and skip even the search. The parsed ``type`` decides.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from rtrelay.errors import InvalidEvent

__all__ = [
    "CHECKED_CLIENT_EVENTS",
    "ClientTap",
    "ServerTap",
    "client_tap",
    "server_tap",
]

CHECKED_CLIENT_EVENTS: Final = frozenset(
    {"response.create", "session.update", "transcription_session.update"}
)
"""Client events the gate must see before they are forwarded."""

ClientTap = tuple[str, dict[str, Any]]
ServerTap = tuple[str, dict[str, Any]]

_APPEND_PREFIXES: Final = (
    b'{"type":"input_audio_buffer.append"',  # orjson, JSON.stringify
    b'{"type": "input_audio_buffer.append"',  # Python's json.dumps (the openai SDK)
)
_APPEND_KEYS: Final = (b'"audio"', b'"event_id"')


def _is_plain_append(frame: bytes) -> bool:
    """True only if no JSON parser could read ``frame`` as anything but an audio append.

    The frame must start with an append ``type`` key, contain no backslash (so every
    key is spelled literally: no escapes) and have every other ``:`` directly after
    ``"audio"`` or ``"event_id"``. Every key in a JSON document is followed by a
    colon, so then its only keys are those, and ``type`` occurs once. Costs two
    ``memchr``-speed scans; anything unusual simply takes the parsing path.
    """
    if not frame.startswith(_APPEND_PREFIXES) or b"\\" in frame:
        return False
    start = 8  # past the ":" of the leading "type" key, in the prefix
    for _ in range(len(_APPEND_KEYS) + 1):
        colon = frame.find(b":", start)
        if colon < 0:
            return True
        if not frame.startswith(_APPEND_KEYS[0], colon - 7) and not frame.startswith(
            _APPEND_KEYS[1], colon - 10
        ):
            return False
        start = colon + 1
    return False


def _top_level_pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs


def _type_keys(frame: bytes) -> int:
    """How many keys of the top-level object spell ``type`` in any case, escapes decoded."""
    try:
        pairs = json.loads(frame, object_pairs_hook=_top_level_pairs)
    except ValueError:
        return 0
    if not isinstance(pairs, list):
        return 0
    return sum(1 for key, _ in pairs if key.lower() == "type")


def client_tap(frame: bytes) -> ClientTap | InvalidEvent | None:
    """What the gate must do with a client frame.

    Returns ``None`` to forward it untouched, ``(type, event)`` for an event in
    ``CHECKED_CLIENT_EVENTS``, or an ``InvalidEvent`` to refuse it (not forwarded).
    """
    if _is_plain_append(frame):
        return None
    try:
        event = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return InvalidEvent("The relay forwards only events that are JSON objects.")
    if not isinstance(event, dict) or not isinstance(kind := event.get("type"), str):
        return InvalidEvent("The 'type' field is missing.", param="type")
    # Only a repeated or escaped key can make two parsers disagree on the type.
    if (b"\\" in frame or frame.lower().count(b'"type"') > 1) and _type_keys(frame) != 1:
        return InvalidEvent("An event must have exactly one 'type' field.", param="type")
    if kind in CHECKED_CLIENT_EVENTS:
        return kind, event
    return None


_RESPONSE_CREATED: Final = b'"response.created"'
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
_SERVER_NEEDLES: Final = (
    (_RESPONSE_DONE, "response.done"),
    (_RESPONSE_CREATED, "response.created"),
    (_TRANSCRIPTION_DONE, "conversation.item.input_audio_transcription.completed"),
)


def server_tap(frame: bytes) -> ServerTap | None:
    """``(type, event)`` for ``response.created``/``.done`` and transcription completions."""
    if frame.startswith(_BULK_PREFIXES):
        return None
    for needle, wanted in _SERVER_NEEDLES:
        if needle in frame:
            try:
                event = orjson.loads(frame)
            except orjson.JSONDecodeError:
                return None
            if not isinstance(event, dict) or event.get("type") != wanted:
                return None
            return wanted, event
    return None
