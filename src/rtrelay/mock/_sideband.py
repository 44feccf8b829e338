"""A server's WebSocket attached to a WebRTC call (``/v1/realtime?call_id=…``).

The call fans its events out to its data channel and every sideband without waiting on
any of them: each sideband has its own queue and writer task, so a slow sideband delays
only itself (and is cut off once its backlog is absurd, as a real server would do).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiohttp import WSMsgType, web

__all__ = ["MAX_SIDEBAND_BACKLOG", "Sideband"]

logger = logging.getLogger("rtrelay.mock")

# Events queued for one sideband that has stopped reading; past this it is cut off.
MAX_SIDEBAND_BACKLOG: Final = 10_000
CLOSE_NORMAL: Final = 1000


class Sideband:
    """The sending half of one attached sideband.

    Args:
        ws: the prepared WebSocket.
        transport: its transport, aborted when the call is dropped.
    """

    __slots__ = ("_closed", "_queue", "_transport", "_ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
        self._ws = ws
        self._transport = transport
        self._queue: asyncio.Queue[bytes | tuple[int, str]] = asyncio.Queue()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def deliver(self, data: bytes) -> None:
        """Queue one event (JSON text) for this sideband."""
        if self._closed:
            return
        if self._queue.qsize() >= MAX_SIDEBAND_BACKLOG:
            logger.info("simulated sideband cut off: %d events unread", MAX_SIDEBAND_BACKLOG)
            self.abort()
            return
        self._queue.put_nowait(data)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close after the events already queued (the call ended)."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait((code, reason))

    def abort(self) -> None:
        """Drop the TCP connection, no close frame (the call was dropped)."""
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    async def write(self) -> None:
        """The writer task's body: send queued events in order until closed."""
        while True:
            item = await self._queue.get()
            if isinstance(item, tuple):
                code, reason = item
                await self._ws.close(code=code, message=reason.encode())
                return
            try:
                await self._ws.send_frame(item, WSMsgType.TEXT)
            except ConnectionError:
                self._closed = True
                return
