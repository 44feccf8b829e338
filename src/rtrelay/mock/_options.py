"""Settings of the simulated provider: behaviour and fault injection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "DEFAULT_AUDIO_CHUNK_MS",
    "DEFAULT_REPLY_AUDIO_MS",
    "Dialect",
    "MockOptions",
]

Dialect = Literal["ga", "beta"]

DEFAULT_REPLY_AUDIO_MS: Final = 1000
DEFAULT_AUDIO_CHUNK_MS: Final = 100
# 10 s of pcm16 is 480 KB, 640 KB in base64: the largest chunk that still fits a 1 MiB frame.
MAX_AUDIO_CHUNK_MS: Final = 10_000


def _sendable_close_code(code: int) -> bool:
    """RFC 6455 §7.4: codes an endpoint may put in a close frame."""
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or (
        3000 <= code <= 4999
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MockOptions:
    """How the simulated provider behaves; each new connection reads the current value.

    Behaviour:
        dialect: event shape spoken when the client does not ask for beta.
        ga_only: a beta request (header ``OpenAI-Beta: realtime=v1`` or subprotocol
            ``openai-beta.realtime-v1``) gets ``beta_api_shape_disabled`` and close 4000,
            as OpenAI has done since the beta shape was retired (protocol.md §1).
        api_keys: ``None`` accepts any key (or none); otherwise a missing or unknown key
            gets ``invalid_api_key`` and close 3000 after a successful upgrade (§3).
        realtime_pacing: speed of reply streaming relative to real time: 1.0 real time,
            2.0 twice as fast, 0 as fast as possible (tests).
        reply_audio_ms / audio_chunk_ms: length of an assistant audio reply and of each delta.
        max_session_seconds: after this long, ``session_expired`` (GPT-Live:
            ``session.closed`` with reason ``expired``) and close 1001.
        live_usage_interval: seconds between a GPT-Live session's ``session.usage.updated``
            events (OpenAI sends one every ~15 s, protocol.md §10; tests shorten it).
        live_delegate_turns: a GPT-Live model delegates every turn it hears to the
            session's delegate, if it has one (``session.delegation.created``, then the
            Responses or Decisions answer with its token usage): delegated work no client
            event asked for.
        live_reflect_audio: a GPT-Live WebRTC session reflects its audio to its sidebands
            (``session.input_audio.append`` and timestamped ``session.output_audio.delta``,
            pcm16 at 24 kHz), as OpenAI's sidebands receive it: off by default, as it is a
            lot of events a metering sideband only reads past.

    Faults (counted in events sent on one connection, ``session.created`` included):
        refuse_status / refuse_body: refuse the HTTP handshake.
        stall_handshake: seconds to wait before answering the handshake.
        drop_after_events: abort the TCP connection (no close frame) after N events.
        close_after_events / close_code / close_reason: send a close frame after N events.
        malformed_after_events: send one non-JSON text frame after N events.
        repeat_event: send every event of this type twice, the same frame (same ids),
            as a provider that retried a send would; e.g. ``response.done``.
        oversized_after_events / oversized_bytes: send one text frame of that many bytes
            (default 20 MiB, over any sane limit) after N events.
        stop_reading_after_events: once N events were sent, never read again: client
            frames pile up in TCP buffers and pings go unanswered, as a stalled server's do.

    GPT-Live usage faults (for a relay's idempotent duration metering):
        repeat_usage: send every ``session.usage.updated`` twice, the same frame
            (shorthand for ``repeat_event="session.usage.updated"``).
        reorder_usage: once, right after a usage event, send the previous (smaller)
            cumulative value again with a new event id: an update arriving out of order.
        no_usage_events: send no ``session.usage.updated`` at all (``session.closed``
            still reports the final usage).

    GPT-Live (``/v1/live/sessions``) and translation (``/v1/realtime/translations``)
    WebSockets honour the same handshake and connection faults as Realtime sessions.

    WebRTC calls (``POST /v1/realtime/calls``) and their sidebands honour the faults that
    make sense there: ``refuse_status``/``refuse_body`` refuse the offer (and a sideband's
    upgrade), ``stall_handshake`` delays the answer, ``drop_after_events`` counts events
    sent on the ``oai-events`` data channel and then stops the peer without a goodbye
    (no DTLS close, sidebands aborted), ``max_session_seconds`` expires the call. The
    other faults are WebSocket-only. ``refuse_sideband_status`` refuses only sidebands
    (``/v1/realtime?call_id=…``) with that status while offers are still answered: a
    gateway whose metering sideband cannot attach must hang the call up.
    """

    dialect: Dialect = "ga"
    ga_only: bool = False
    api_keys: frozenset[str] | None = None
    realtime_pacing: float = 1.0
    reply_audio_ms: int = DEFAULT_REPLY_AUDIO_MS
    audio_chunk_ms: int = DEFAULT_AUDIO_CHUNK_MS
    max_session_seconds: float | None = None
    live_usage_interval: float = 5.0
    live_delegate_turns: bool = False
    live_reflect_audio: bool = False
    refuse_status: int | None = None
    refuse_body: str | None = None
    stall_handshake: float | None = None
    drop_after_events: int | None = None
    close_after_events: int | None = None
    close_code: int = 1000
    close_reason: str = ""
    malformed_after_events: int | None = None
    repeat_event: str | None = None
    oversized_after_events: int | None = None
    oversized_bytes: int = 20 * 1024 * 1024
    stop_reading_after_events: int | None = None
    refuse_sideband_status: int | None = None
    repeat_usage: bool = False
    reorder_usage: bool = False
    no_usage_events: bool = False

    def __post_init__(self) -> None:
        if self.dialect not in ("ga", "beta"):
            raise ValueError(f"dialect must be 'ga' or 'beta', not {self.dialect!r}")
        if self.realtime_pacing < 0:
            raise ValueError("realtime_pacing must be >= 0")
        if self.reply_audio_ms <= 0:
            raise ValueError("reply_audio_ms must be > 0")
        if not 10 <= self.audio_chunk_ms <= MAX_AUDIO_CHUNK_MS:
            raise ValueError(f"audio_chunk_ms must be between 10 and {MAX_AUDIO_CHUNK_MS}")
        if self.live_usage_interval <= 0:
            raise ValueError("live_usage_interval must be > 0")
        if self.max_session_seconds is not None and self.max_session_seconds <= 0:
            raise ValueError("max_session_seconds must be > 0")
        if self.refuse_status is not None and not (
            200 <= self.refuse_status <= 599 and self.refuse_status != 101
        ):
            raise ValueError("refuse_status must be an HTTP status between 200 and 599")
        if self.refuse_sideband_status is not None and not (
            400 <= self.refuse_sideband_status <= 599
        ):
            raise ValueError("refuse_sideband_status must be an HTTP error status (400-599)")
        if self.stall_handshake is not None and self.stall_handshake < 0:
            raise ValueError("stall_handshake must be >= 0")
        for name in (
            "drop_after_events",
            "close_after_events",
            "malformed_after_events",
            "oversized_after_events",
            "stop_reading_after_events",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if not _sendable_close_code(self.close_code):
            raise ValueError(f"close_code {self.close_code} cannot be sent in a close frame")
        if self.repeat_event is not None and not self.repeat_event.strip():
            raise ValueError("repeat_event must name an event type")
        if self.oversized_bytes < 64:
            raise ValueError("oversized_bytes must be >= 64")
        if len(self.close_reason.encode()) > 123:
            raise ValueError("close_reason must fit in 123 bytes (RFC 6455 §5.5)")
