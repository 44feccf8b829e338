"""What the simulated provider observed, for tests to assert on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from rtrelay.mock._options import Dialect

__all__ = ["CallRecord", "HandshakeRecord", "SessionRecord"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeRecord:
    """One upgrade attempt, as received.

    ``accepted`` is true when the provider answered 101, even if it then closed the
    session with an error (a bad key is reported after the upgrade, as OpenAI does).
    Headers and subprotocols may carry credentials, so they stay out of ``repr``.
    """

    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)
    subprotocols: tuple[str, ...] = field(repr=False)
    accepted: bool


@dataclass(slots=True, kw_only=True)
class SessionRecord:
    """One upgraded connection, updated while it runs.

    ``close_code``/``close_reason`` are what the client sent in its close frame (1006
    when the connection died without one); ``server_close_code`` is what the provider sent.
    """

    session_id: str | None
    path: str
    model: str
    dialect: Dialect
    events_sent: int = 0
    events_received: int = 0
    close_code: int | None = None
    close_reason: str | None = None
    server_close_code: int | None = None
    server_close_reason: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


@dataclass(slots=True, kw_only=True)
class CallRecord:
    """One WebRTC call, updated while it runs.

    ``events_sent`` counts events sent on the ``oai-events`` data channel (the unit of the
    ``drop_after_events`` fault); ``events_received`` counts client events from the data
    channel and every sideband. ``controls`` lists the call-control requests in order
    (``"accept"``, ``"refer"``, …); ``end_reason`` says how the call ended: ``"hangup"``,
    ``"reject"``, ``"client"`` (the peer connection closed or failed), ``"timeout"``
    (ICE never completed), ``"expired"``, ``"dropped"`` (fault), ``"shutdown"`` or
    ``"closed"`` (a Live session's ``session.close``). A GPT-Live WebRTC session is a call
    too: its ``call_id`` is the session id.
    """

    call_id: str
    session_id: str
    model: str
    events_sent: int = 0
    events_received: int = 0
    sidebands: int = 0
    audio_frames_received: int = 0
    controls: list[str] = field(default_factory=list)
    end_reason: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
