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

Each protocol (``protocols.py``) has its own pair, built by the same two factories
from its own event names: Realtime, GPT-Live (``openai/types/live``) and realtime
translation (``openai/types/realtime/realtime_translation_*``). Translation has no
usage event, so its meter measures the client's input audio: its tap returns every
``session.input_audio_buffer.append`` as ``(type, {"audio_bytes": n})``, ``n`` the
decoded size, counted from the base64 text's length without parsing a plain append.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import orjson

from rtrelay.errors import InvalidEvent

__all__ = [
    "AUDIO_BYTES",
    "CHECKED_CLIENT_EVENTS",
    "LIVE_CHECKED_CLIENT_EVENTS",
    "LIVE_SERVER_EVENTS",
    "TRANSLATION_APPEND",
    "TRANSLATION_CHECKED_CLIENT_EVENTS",
    "ClientTap",
    "ServerTap",
    "client_tap",
    "live_client_tap",
    "live_server_tap",
    "server_tap",
    "translation_client_tap",
    "translation_server_tap",
]

CHECKED_CLIENT_EVENTS: Final = frozenset(
    {"response.create", "session.update", "transcription_session.update"}
)
"""Client events the gate must see before they are forwarded (Realtime)."""
LIVE_CHECKED_CLIENT_EVENTS: Final = frozenset({"response.create", "session.update"})
"""GPT-Live: ``response.create`` asks the delegated Responses backend for billable work;
``session.update`` may change the delegation (and its model)."""
TRANSLATION_APPEND: Final = "session.input_audio_buffer.append"
"""The translation client event whose audio the meter measures."""
TRANSLATION_CHECKED_CLIENT_EVENTS: Final = frozenset({"session.update"})
AUDIO_BYTES: Final = "audio_bytes"
"""The key of a measured append's event: decoded bytes of input audio."""

ClientTap = tuple[str, dict[str, Any]]
ServerTap = tuple[str, dict[str, Any]]

_APPEND_PREFIXES: Final = (
    b'{"type":"input_audio_buffer.append"',  # orjson, JSON.stringify
    b'{"type": "input_audio_buffer.append"',  # Python's json.dumps (the openai SDK)
)
_LIVE_APPEND_PREFIXES: Final = (
    b'{"type":"session.input_audio.append"',
    b'{"type": "session.input_audio.append"',
)
_TRANSLATION_APPEND_PREFIXES: Final = (
    b'{"type":"session.input_audio_buffer.append"',
    b'{"type": "session.input_audio_buffer.append"',
)
_APPEND_KEYS: Final = (b'"audio"', b'"event_id"')


def _plain_append(prefixes: tuple[bytes, ...]) -> Callable[[bytes], bool]:
    """A test that is true only if no JSON parser could read a frame as anything but an
    audio append whose ``type`` starts one of ``prefixes``.

    The frame must start with an append ``type`` key, contain no backslash (so every
    key is spelled literally: no escapes) and have every other ``:`` directly after
    ``"audio"`` or ``"event_id"``. Every key in a JSON document is followed by a
    colon, so then its only keys are those, and ``type`` occurs once. Costs two
    ``memchr``-speed scans; anything unusual simply takes the parsing path.
    """

    def is_plain(frame: bytes) -> bool:
        if not frame.startswith(prefixes) or b"\\" in frame:
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

    return is_plain


_is_plain_append: Final = _plain_append(_APPEND_PREFIXES)


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


def _client_tap(
    is_plain: Callable[[bytes], bool], checked: frozenset[str], measured: str | None = None
) -> Callable[[bytes], ClientTap | InvalidEvent | None]:
    """A client tap: ``is_plain`` frames are forwarded unparsed, ``checked`` events are
    picked out whole, a ``measured`` append as ``(type, {"audio_bytes": n})``."""

    def tap(frame: bytes) -> ClientTap | InvalidEvent | None:
        """What the gate must do with a client frame.

        Returns ``None`` to forward it untouched, ``(type, event)`` for a checked
        event, or an ``InvalidEvent`` to refuse it (not forwarded).
        """
        if is_plain(frame):
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
        if kind in checked:
            return kind, event
        if kind == measured:
            return kind, {AUDIO_BYTES: _audio_size(event.get("audio"))}
        return None

    return tap


client_tap: Final = _client_tap(_is_plain_append, CHECKED_CLIENT_EVENTS)
"""The Realtime client tap."""
live_client_tap: Final = _client_tap(
    _plain_append(_LIVE_APPEND_PREFIXES), LIVE_CHECKED_CLIENT_EVENTS
)
"""The GPT-Live client tap: ``session.input_audio.append`` frames are the bulk."""

_is_plain_translation_append: Final = _plain_append(_TRANSLATION_APPEND_PREFIXES)


def decoded_size(b64_chars: int, padding: int) -> int:
    """Bytes that ``b64_chars`` characters of base64 ending in ``padding`` ``=`` decode to."""
    return max(b64_chars // 4 * 3 + (b64_chars % 4) * 3 // 4 - padding, 0)


def _audio_size(audio: Any) -> int:
    if not isinstance(audio, str):
        return 0
    return decoded_size(len(audio), len(audio) - len(audio.rstrip("=")))


_BEFORE_VALUE: Final = b" \t\r\n:"
"""What JSON allows between a key and its value."""


def _plain_audio_size(frame: bytes) -> int:
    """The decoded size of a plain append's ``audio`` (``_plain_append`` holds): the
    string's length between its quotes, found by position; base64 has no quote."""
    key = frame.find(b'"audio"', 8)
    if key < 0:
        return 0
    opening = key + 7
    while opening < len(frame) and frame[opening] in _BEFORE_VALUE:
        opening += 1
    if opening >= len(frame) or frame[opening] != 0x22:  # not a string: nothing to decode
        return 0
    closing = frame.find(b'"', opening + 1)
    if closing < 0:
        return 0
    padding = 2 if frame[closing - 2 : closing] == b"==" else int(frame[closing - 1] == 0x3D)
    return decoded_size(closing - opening - 1, padding)


def _never(frame: bytes) -> bool:
    return False


_translation_parsed: Final = _client_tap(
    _never, TRANSLATION_CHECKED_CLIENT_EVENTS, measured=TRANSLATION_APPEND
)


def translation_client_tap(frame: bytes) -> ClientTap | InvalidEvent | None:
    """The translation client tap: ``session.update`` as parsed, and every input audio
    append as ``(TRANSLATION_APPEND, {"audio_bytes": n})``: what the meter measures."""
    if _is_plain_translation_append(frame):
        return TRANSLATION_APPEND, {AUDIO_BYTES: _plain_audio_size(frame)}
    return _translation_parsed(frame)


def _server_tap(
    bulk: tuple[bytes, ...], names: tuple[str, ...], accept: Callable[[dict[str, Any]], bool]
) -> Callable[[bytes], ServerTap | None]:
    needles = tuple(f'"{name}"'.encode() for name in names)
    wanted = frozenset(names)

    def tap(frame: bytes) -> ServerTap | None:
        """``(type, event)`` for the provider events that carry usage or open a response."""
        if frame.startswith(bulk):
            return None
        for needle in needles:
            if needle in frame:
                break
        else:
            return None
        try:
            event = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(event, dict) or (kind := event.get("type")) not in wanted:
            return None
        return (kind, event) if accept(event) else None

    return tap


def _any(event: dict[str, Any]) -> bool:
    return True


server_tap: Final = _server_tap(
    # Server events that are never metered and make up almost all frames.
    (
        b'{"type":"response.output_audio.delta"',
        b'{"type":"response.audio.delta"',
        b'{"type":"response.output_audio_transcript.delta"',
        b'{"type":"response.audio_transcript.delta"',
        b'{"type":"response.output_text.delta"',
        b'{"type":"response.text.delta"',
    ),
    (
        "response.done",
        "response.created",
        "conversation.item.input_audio_transcription.completed",
    ),
    _any,
)
"""The Realtime server tap: ``response.created``/``.done`` and transcription completions."""

LIVE_SERVER_EVENTS: Final = (
    "session.usage.updated",
    "response.event",
    "session.started",
    "session.closed",
    "decision.event",
)
"""GPT-Live server events the meter reads: cumulative seconds (``session.closed`` carries
the final figure), delegated work that ends with token usage (a finished Responses
response, a completed Decision; see ``delegated_usage``) and the resolved session config."""
DELEGATED_TERMINAL: Final = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)
"""Responses API stream events that end a response and carry its ``usage``."""


def delegated_usage(event: dict[str, Any]) -> bool:
    """Whether a Live ``response.event`` wraps a finished Responses response with usage,
    or a ``decision.event`` a completed Decision with usage (``openai/types/decision.py``);
    other events pass."""
    kind = event.get("type")
    if kind not in ("response.event", "decision.event"):
        return True
    inner = event.get("event")
    if not isinstance(inner, dict):
        return False
    if kind == "response.event":
        result = inner.get("response") if inner.get("type") in DELEGATED_TERMINAL else None
    else:
        result = inner.get("decision") if inner.get("type") == "decision.completed" else None
    return isinstance(result, dict) and isinstance(result.get("usage"), dict)


live_server_tap: Final = _server_tap(
    (
        b'{"type":"session.output_audio.delta"',
        b'{"type":"session.output_transcript.delta"',
        b'{"type":"session.input_transcript.delta"',
        b'{"type":"session.input_audio.append"',  # reflected audio on a sideband
    ),
    LIVE_SERVER_EVENTS,
    delegated_usage,
)
"""The GPT-Live server tap."""


def translation_server_tap(frame: bytes) -> ServerTap | None:
    """Translation reports no usage: no server frame is metered."""
    return None
