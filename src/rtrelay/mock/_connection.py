"""One upgraded connection: feed the protocol, pace the replies, inject the faults.

The thin I/O half of the simulated provider. A ``SessionProtocol`` (Realtime, GPT-Live or
translation) decides what to say; this module decides when, and owns the socket, the
tasks and the failure modes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

import orjson
from aiohttp import WSMsgType, web

from rtrelay.mock import _errors as errors
from rtrelay.mock._options import MockOptions
from rtrelay.mock._pacing import stream_responses
from rtrelay.mock._records import SessionRecord
from rtrelay.mock._response import Event, Step
from rtrelay.mock._session import SessionProtocol, Ticker, expiry_events
from rtrelay.wire import REALTIME_SUBPROTOCOL

__all__ = ["MAX_SERVER_FRAME", "Connection", "Outbox", "websocket_response"]

logger = logging.getLogger("rtrelay.mock")

# SDK clients built on `websockets` refuse frames of 1 MiB or more (protocol.md §3).
MAX_SERVER_FRAME: Final = 1024 * 1024
# input_audio_buffer.append may carry 15 MiB of audio (protocol.md §3); base64 adds a third.
MAX_CLIENT_FRAME: Final = 21 * 1024 * 1024
# How long a server-initiated close waits for the client's close frame.
CLOSE_TIMEOUT: Final = 5.0
# What a client gets after a fault-injected "malformed" frame: truncated JSON.
MALFORMED_FRAME: Final = b'{"type": "response.output_audio.delta", "delta": "AAAA'
CLOSE_NORMAL: Final = 1000
CLOSE_INTERNAL_ERROR: Final = 1011
CLOSE_GOING_AWAY: Final = 1001
ABNORMAL_CLOSURE: Final = 1006
# The GPT-Live event the ``repeat_usage`` fault sends twice.
USAGE_EVENT: Final = "session.usage.updated"


def websocket_response() -> web.WebSocketResponse:
    """A session's or a sideband's WebSocket, as OpenAI's server answers the upgrade."""
    return web.WebSocketResponse(
        protocols=(REALTIME_SUBPROTOCOL,),
        compress=False,
        max_msg_size=MAX_CLIENT_FRAME,
        timeout=CLOSE_TIMEOUT,
        decode_text=False,
    )


class Outbox:
    """The only writer to the socket: serialises events in order and applies faults.

    Senders call ``send`` right after computing events, with no ``await`` in between; the
    FIFO lock then keeps frames in the order the protocol produced them.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        options: MockOptions,
        record: SessionRecord,
    ) -> None:
        self._ws = ws
        self._transport = transport
        self._options = options
        self._record = record
        self._lock = asyncio.Lock()
        self._closed = False
        self.closer: asyncio.Task[Any] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self) -> None:
        """Apply faults set to fire after zero events."""
        async with self._lock:
            await self._faults()

    async def send(self, events: Sequence[Event]) -> None:
        if not events:
            return
        options = self._options
        repeated = {options.repeat_event, USAGE_EVENT if options.repeat_usage else None}
        async with self._lock:
            for event in events:
                if self._closed:
                    return
                data = orjson.dumps(event)
                if len(data) >= MAX_SERVER_FRAME:
                    raise RuntimeError(f"{event['type']} is {len(data)} bytes, over 1 MiB")
                for _ in range(2 if event.get("type") in repeated else 1):
                    if self._closed or not await self._write(data):
                        return
                    self._record.events_sent += 1
                    await self._faults()

    async def close(self, code: int, reason: str) -> None:
        async with self._lock:
            await self._close(code, reason)

    async def _write(self, data: bytes) -> bool:
        try:
            await self._ws.send_frame(data, WSMsgType.TEXT)
        except ConnectionError:
            self._closed = True
            return False
        return True

    async def _faults(self) -> None:
        sent = self._record.events_sent
        options = self._options
        if options.drop_after_events == sent:
            self._closed = True
            if self._transport is not None:
                self._transport.abort()
        elif options.close_after_events == sent:
            await self._close(options.close_code, options.close_reason)
        elif options.malformed_after_events == sent:
            await self._write(MALFORMED_FRAME)
        elif options.oversized_after_events == sent:
            padding = b"A" * (options.oversized_bytes - 32)
            await self._write(b'{"type":"x.oversized","pad":"' + padding + b'"}')

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.closer = asyncio.current_task()
        self._record.server_close_code = code
        self._record.server_close_reason = reason
        await self._ws.close(code=code, message=reason.encode())


class Connection:
    """Runs one session from the first event to the close.

    Args:
        ws: the prepared WebSocket.
        transport: its transport, aborted by the drop fault.
        options: the options in force when the client connected.
        protocol: the session's state machine.
        record: what tests can observe about this session.
        on_event: called with every client event parsed.
        ticker: events to send on a timer (GPT-Live usage updates), if any.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        options: MockOptions,
        protocol: SessionProtocol,
        record: SessionRecord,
        on_event: Callable[[dict[str, Any]], None],
        ticker: Ticker | None = None,
    ) -> None:
        self._ws = ws
        self._options = options
        self._protocol = protocol
        self._record = record
        self._on_event = on_event
        self._outbox = Outbox(ws, transport, options, record)
        self._transport = transport
        self._ticker = ticker
        self._wake = asyncio.Event()

    @staticmethod
    async def reject(
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        options: MockOptions,
        record: SessionRecord,
        error: Event,
        close_code: int,
        close_reason: str,
    ) -> None:
        """Send a fatal error event as the first frame, then close (bad key, wrong model)."""
        outbox = Outbox(ws, transport, options, record)
        await outbox.send([error])
        await outbox.close(close_code, close_reason)
        record.close_code = ws.close_code

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._guard(self._stream()), name="rtrelay.mock.stream")]
        if self._options.max_session_seconds is not None:
            expiry = self._expire(self._options.max_session_seconds)
            tasks.append(asyncio.create_task(self._guard(expiry), name="rtrelay.mock.expire"))
        if self._ticker is not None:
            ticks = self._tick(self._ticker)
            tasks.append(asyncio.create_task(self._guard(ticks), name="rtrelay.mock.tick"))
        try:
            await self._outbox.start()
            await self._outbox.send(self._protocol.connect())
            await self._receive()
        except Exception:
            logger.exception("simulated session %s failed", self._protocol.session_id)
            await self._outbox.close(CLOSE_INTERNAL_ERROR, "internal server error")
        finally:
            await self._stop(tasks)

    async def shutdown(self) -> None:
        """Close with 1001, as a server going away does."""
        await self._outbox.close(CLOSE_GOING_AWAY, "server shutting down")

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        """Top of a session task: a bug closes the session with 1011 instead of hanging it."""
        try:
            await work
        except Exception:
            logger.exception("simulated session %s task failed", self._protocol.session_id)
            await self._outbox.close(CLOSE_INTERNAL_ERROR, "internal server error")

    async def _receive(self) -> None:
        protocol, outbox, record = self._protocol, self._outbox, self._record
        stop_after = self._options.stop_reading_after_events
        while True:
            if stop_after is not None and record.events_sent >= stop_after:
                await self._stall()
                return
            message = await self._ws.receive()
            if message.type is WSMsgType.TEXT:
                inbound = protocol.receive_text(message.data)
                if inbound.event is not None:
                    record.events_received += 1
                    self._on_event(inbound.event)
                await outbox.send(inbound.replies)
                await self._close_if_finished()
                if protocol.response_active:
                    self._wake.set()
            elif message.type is WSMsgType.BINARY:
                await outbox.send(protocol.receive_binary())
            elif message.type is WSMsgType.CLOSE:
                record.close_code = message.data
                record.close_reason = message.extra
                return
            else:  # CLOSING (we closed), CLOSED or ERROR (the transport went away)
                if record.close_code is None and outbox.closer is None:
                    record.close_code = ABNORMAL_CLOSURE
                return

    async def _stall(self) -> None:
        """Read nothing (pings included) until the peer or a shutdown closes the connection."""
        transport = self._transport
        # Nothing signals a closed transport to a handler that does not read: poll.
        while not self._outbox.closed and transport is not None and not transport.is_closing():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self._record.close_code is None:
            self._record.close_code = ABNORMAL_CLOSURE

    async def _stream(self) -> None:
        outbox = self._outbox

        async def send(response_id: str, step: Step) -> None:
            await outbox.send(step.events)
            await self._close_if_finished()

        await stream_responses(
            self._protocol, self._wake, self._options.realtime_pacing, send, lambda: outbox.closed
        )

    async def _close_if_finished(self) -> None:
        """The protocol ended the session (``session.closed`` sent): close with 1000."""
        if self._protocol.finished:
            await self._outbox.close(CLOSE_NORMAL, "")

    async def _tick(self, ticker: Ticker) -> None:
        while not self._outbox.closed and not self._protocol.finished:
            await asyncio.sleep(ticker.interval)
            if self._outbox.closed or self._protocol.finished:
                return
            await self._outbox.send(ticker.tick())

    async def _expire(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._outbox.send(expiry_events(self._protocol, seconds))
        await self._outbox.close(CLOSE_GOING_AWAY, errors.session_expired(seconds).message)

    async def _stop(self, tasks: list[asyncio.Task[None]]) -> None:
        closer = self._outbox.closer
        if closer is not None and closer in tasks:
            # A task is finishing the close handshake; let it, within the close timeout.
            await asyncio.wait({closer}, timeout=10.0)
        for task in tasks:
            task.cancel()
        # Tasks guard themselves; what is left to collect is our own cancellation.
        await asyncio.gather(*tasks, return_exceptions=True)
