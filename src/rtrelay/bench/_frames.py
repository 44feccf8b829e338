"""The client events a benchmark session sends, and how it reads what comes back.

Frames are built as compact JSON bytes, as browser and orjson clients send them, with
the audio base64 encoded once per run. Every client event carries a client-chosen
``event_id`` (protocol.md §4 allows one on any client event) of the form
``bench_<CLOCK_MONOTONIC ns>``: the send time, readable by any process on the machine.

Latency probes are events of a type the provider does not know, stamped
``bench_p<ns>``: it answers each at once with an ``error`` event whose
``error.event_id`` is the probe's, so a probe's round trip is ``now - stamp`` on the
same clock. An error answering any other event is a real error. A GPT-Live provider answers the
same probe with its own ``error`` shape, which quotes the probe as ``client_event_id``
(``openai/types/live/error_event.py``); GPT-Live frames are the ``live_*`` ones.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Final

import orjson

__all__ = [
    "LIVE_APPEND",
    "PROBE_PREFIX",
    "PROBE_TYPE",
    "STAMP_PREFIX",
    "Audio",
    "append_frame",
    "commit_frame",
    "live_start_frame",
    "probe_frame",
    "probe_stamp",
    "response_create_frame",
    "session_update_frame",
    "text_item_frame",
    "tone_pcm16",
]

STAMP_PREFIX: Final = "bench_"
PROBE_PREFIX: Final = "bench_p"
PROBE_TYPE: Final = "bench.probe"
SAMPLE_RATE: Final = 24_000
REALTIME_APPEND: Final = b"input_audio_buffer.append"
LIVE_APPEND: Final = b"session.input_audio.append"
"""GPT-Live's append (``openai/types/live/input_audio_append_event.py``)."""


def tone_pcm16(ms: int, *, hz: float = 220.0, level: float = 0.2) -> bytes:
    """``ms`` of a quiet tone as 24 kHz mono pcm16 (what a microphone would send)."""
    count = SAMPLE_RATE * ms // 1000
    amplitude = int(32767 * level)
    samples = (int(amplitude * math.sin(2 * math.pi * hz * i / SAMPLE_RATE)) for i in range(count))
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


class Audio:
    """One chunk of audio, base64-encoded once and reused by every append (``level`` 0:
    digital silence)."""

    __slots__ = ("b64", "ms")

    def __init__(self, ms: int, *, level: float = 0.2) -> None:
        self.ms = ms
        self.b64 = base64.b64encode(tone_pcm16(ms, level=level))


def append_frame(audio: Audio, stamp_ns: int, kind: bytes = REALTIME_APPEND) -> bytes:
    # ``type`` first, as SDKs write it: relays may recognise the bulk event by its prefix.
    return b'{"type":"%s","event_id":"bench_%d","audio":"%s"}' % (kind, stamp_ns, audio.b64)


def live_start_frame(stamp_ns: int, model: str) -> bytes:
    """A GPT-Live session's first frame: its model, pcm16 at 24 kHz by default."""
    return orjson.dumps(
        {
            "type": "session.start",
            "event_id": f"{STAMP_PREFIX}{stamp_ns}",
            "session": {"model": model},
        }
    )


def probe_frame(stamp_ns: int) -> bytes:
    return b'{"type":"bench.probe","event_id":"bench_p%d"}' % stamp_ns


def commit_frame(stamp_ns: int) -> bytes:
    return b'{"type":"input_audio_buffer.commit","event_id":"bench_%d"}' % stamp_ns


def response_create_frame(stamp_ns: int, *, text_only: bool = False) -> bytes:
    event: dict[str, Any] = {"type": "response.create", "event_id": f"{STAMP_PREFIX}{stamp_ns}"}
    if text_only:
        event["response"] = {"output_modalities": ["text"]}
    return orjson.dumps(event)


def text_item_frame(stamp_ns: int, text: str) -> bytes:
    return orjson.dumps(
        {
            "type": "conversation.item.create",
            "event_id": f"{STAMP_PREFIX}{stamp_ns}",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
    )


def session_update_frame(stamp_ns: int) -> bytes:
    """Turn server VAD off: the client commits each turn itself, as push-to-talk apps do.

    The load then does not depend on how the simulated provider's VAD hears a tone,
    and the provider spends no CPU on it that would compete with the relay.
    """
    return orjson.dumps(
        {
            "type": "session.update",
            "event_id": f"{STAMP_PREFIX}{stamp_ns}",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )


_PROBE_ID: Final = b'"event_id":"' + PROBE_PREFIX.encode()


def probe_stamp(frame: bytes) -> int | None:
    """The stamp of the probe an ``error`` frame answers, or ``None`` if it answers none.

    A byte search first (cheap, works on compact JSON); a full parse only for frames
    a proxy re-serialised with other spacing.
    """
    at = frame.find(_PROBE_ID)
    if at >= 0:
        start = at + len(_PROBE_ID)
        end = frame.find(b'"', start)
        digits = frame[start:end]
        return int(digits) if digits.isdigit() else None
    if PROBE_PREFIX.encode() not in frame:
        return None
    try:
        event = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    error = event.get("error") if isinstance(event, dict) else None
    event_id = error.get("event_id") if isinstance(error, dict) else None
    if isinstance(event_id, str) and event_id.startswith(PROBE_PREFIX):
        stamp = event_id[len(PROBE_PREFIX) :]
        return int(stamp) if stamp.isdigit() else None
    return None
