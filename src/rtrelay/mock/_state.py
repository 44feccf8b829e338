"""What one simulated provider app shares across its connections: options and observations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from rtrelay.mock._options import MockOptions
from rtrelay.mock._records import CallRecord, HandshakeRecord, SessionRecord

if TYPE_CHECKING:
    from rtrelay.mock._connection import Connection
    from rtrelay.mock._rtc import Call

__all__ = ["STATE", "MockState"]


@dataclass(slots=True, kw_only=True)
class MockState:
    """Options in force and everything observed, shared by all connections of one app.

    ``connections`` are the open WebSocket sessions, ``calls`` the live WebRTC calls by
    id (a call's sidebands belong to the call); ``idle`` is set while there are neither.
    """

    options: MockOptions
    record: bool = True
    handshakes: list[HandshakeRecord] = field(default_factory=list)
    events_received: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    call_records: list[CallRecord] = field(default_factory=list)
    connections: set[Connection] = field(default_factory=set)
    calls: dict[str, Call] = field(default_factory=dict)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    @property
    def active_sessions(self) -> int:
        return len(self.connections)

    def on_event(self, event: dict[str, Any]) -> None:
        if self.record:
            self.events_received.append(event)

    def update_idle(self) -> None:
        """Set or clear ``idle`` after a session or call started or ended."""
        if self.connections or self.calls:
            self.idle.clear()
        else:
            self.idle.set()


STATE: Final = web.AppKey("rtrelay_mock_state", MockState)
