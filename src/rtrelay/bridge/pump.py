"""The bridge: two pumps that forward frames untouched, and the watchdog.

Frames arrive as bytes (``decode_text=False``) and leave through ``send_frame`` with
their original opcode, so nothing is decoded or re-serialised on the way. Every
decision (refuse an event, cancel a response, end the session, which close codes) is
the session core's (``session.py``); this module only reads, asks and acts.
Backpressure is aiohttp's: ``send_frame`` waits while the receiving side's transport is
over its high-water mark, so the pump stops reading and the sender's TCP window closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from rtrelay.bridge.session import Actions, End, Session
from rtrelay.errors import CloseCode, MessageTooLarge, RelayError
from rtrelay.log import bridge_log
from rtrelay.tasks import cancel_and_wait

__all__ = ["Bridge", "ClientLeg", "Counters", "error_frame", "new_event_id", "response_cancel"]

CLOSE_TIMEOUT: Final = 5.0
"""How long a close handshake may take before the transport is aborted."""

_SAMPLE_MASK: Final = 63
_MAX_SAMPLES: Final = 1024
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY


def new_event_id() -> str:
    return "event_" + secrets.token_hex(11)


def error_frame(error: RelayError, client_event_id: str | None = None, *, live: bool) -> bytes:
    """The ``error`` event for a client, in its protocol's shape."""
    render = error.to_live_event if live else error.to_event
    return orjson.dumps(render(new_event_id(), client_event_id))


def response_cancel(response_id: str) -> bytes:
    """The ``response.cancel`` the relay sends the provider for a budget it must enforce."""
    cancel = {"type": "response.cancel", "event_id": new_event_id(), "response_id": response_id}
    return orjson.dumps(cancel)


class ClientLeg(web.WebSocketResponse):
    """The client's WebSocket, explaining the one close aiohttp sends on its own.

    When a client frame exceeds ``max_msg_size`` aiohttp closes with 1009 from
    inside ``receive()``, before the relay sees anything; this hook sends the
    ``message_too_large`` error event first and gives the close its reason.
    """

    live_errors = False
    """Errors in GPT-Live's ``error`` shape (the bridge sets it for a Live session)."""

    async def close(
        self, *, code: int = CloseCode.NORMAL, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == CloseCode.MESSAGE_TOO_BIG and not message and not self.closed:
            error = MessageTooLarge()
            with contextlib.suppress(ConnectionError):
                await self.send_frame(error_frame(error, live=self.live_errors), _TEXT)
            message = error.close_reason().encode()
        return await super().close(code=code, message=message, drain=drain)

    def _on_data_received(self) -> None:
        """Keep a closed leg's heartbeat off (aiohttp 3.14 re-arms it on any data).

        The client's reply to our close arrives after ``close()`` has cancelled the
        heartbeat; re-armed, its timer kept this response, its request and connection
        alive for heartbeat + heartbeat/2 s after every session the relay or the
        provider ended (the soak saw ~2 MB per 1,000 sessions; tests/edge/
        test_closed_leg_released.py).
        """
        if not self.closed:
            super()._on_data_received()

    def _handshake(self, request: web.BaseRequest) -> tuple[Any, str | None, int, bool]:
        """aiohttp's handshake, without its warning when no offered subprotocol is ours.

        That warning lists every protocol offered, and a browser offers its key
        (``openai-insecure-api-key.<key>``): answering with no subprotocol is right (the
        client decides if that will do), writing the offer into a log is not.
        """
        offered = request.headers.get("Sec-WebSocket-Protocol")
        if offered is None or any(p.strip() in self._protocols for p in offered.split(",")):
            return super()._handshake(request)
        ours = self._protocols
        self._protocols = (offered.split(",")[0].strip(),)  # an "overlap": nothing to warn
        try:
            headers, _, compress, notakeover = super()._handshake(request)
        finally:
            self._protocols = ours
        headers.popall("Sec-WebSocket-Protocol", None)
        return headers, None, compress, notakeover


@dataclass(slots=True)
class Counters:
    frames_in: int = 0  # client → upstream
    bytes_in: int = 0
    frames_out: int = 0  # upstream → client
    bytes_out: int = 0


@dataclass(slots=True)
class Bridge:
    client: web.WebSocketResponse
    upstream: aiohttp.ClientWebSocketResponse[bool]
    client_transport: asyncio.Transport | None
    session: Session
    clock: Callable[[], float] = time.monotonic
    counters: Counters = field(default_factory=Counters)
    client_close_code: int | None = None
    upstream_close_code: int | None = None
    first_frame_at: float = 0.0
    """When the first provider frame reached the client (``clock()``)."""
    latency_samples: list[float] = field(default_factory=list)
    """Seconds spent in the relay by sampled provider frames; drained by the metrics flush."""
    _sending_since: float = 0.0
    _stop: asyncio.Future[RelayError] | None = None

    def stop(self, error: RelayError) -> None:
        """End the session from outside (shutdown), with ``error`` as the reason."""
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(error)

    async def run(self) -> End:
        if isinstance(self.client, ClientLeg):
            self.client.live_errors = self.session.protocol.name == "live"
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        tasks: set[asyncio.Future[Any]] = {
            asyncio.create_task(self._client_to_upstream(), name="rtrelay.c2u"),
            asyncio.create_task(self._upstream_to_client(), name="rtrelay.u2c"),
            asyncio.create_task(self._watchdog(), name="rtrelay.watchdog"),
        }
        try:
            done, _ = await asyncio.wait({*tasks, self._stop}, return_when=asyncio.FIRST_COMPLETED)
            end = self._first_end(done)
        finally:
            for task in tasks:
                if task.done():
                    continue
                try:
                    await cancel_and_wait(task)
                except Exception:
                    bridge_log.error("bridge task failed while stopping", exc_info=True)
            if not self._stop.done():
                self._stop.cancel()
        await self._finish(end)
        return end

    def _first_end(self, done: set[asyncio.Future[Any]]) -> End:
        if self._stop is not None and self._stop in done:
            return End("relay", error=self._stop.result())
        for future in done:
            exc = future.exception()
            if exc is not None:
                bridge_log.error("bridge task failed", exc_info=exc)
                return End("relay", error=RelayError())
        end: End = next(iter(done)).result()
        return end

    async def _client_to_upstream(self) -> End:
        receive = self.client.receive
        send = self.upstream.send_frame
        tap, decide = self.session.protocol.client_tap, self.session.client_tapped
        counters = self.counters
        while True:
            msg = await receive()
            kind = msg.type
            if kind is _TEXT or kind is _BINARY:
                data: bytes = msg.data
                counters.frames_in += 1
                counters.bytes_in += len(data)
                # Binary frames too: no side door. The session is asked only about frames
                # the tap picks out, so forwarding one unchanged costs a single call.
                if (picked := tap(data)) is not None and (decision := decide(picked)) is not None:
                    if isinstance(decision, End):
                        return decision
                    await self._send_error(decision.error, decision.client_event_id)
                    continue
                try:
                    await send(data, kind)
                except ConnectionResetError:
                    return self.session.upstream_gone(None, "", dropped=True)
            elif kind is WSMsgType.CLOSE:
                return self.session.client_gone(msg.data, msg.extra or "", dropped=False)
            elif kind is WSMsgType.ERROR and _is_too_big(msg.data):
                return self.session.too_large("client")
            else:  # CLOSED, CLOSING, ERROR: the client's connection is gone
                return self.session.client_gone(None, "", dropped=True)

    async def _upstream_to_client(self) -> End:
        receive = self.upstream.receive
        send = self.client.send_frame
        tap, decide = self.session.protocol.server_tap, self.session.server_tapped
        counters = self.counters
        clock = self.clock
        while True:
            msg = await receive()
            kind = msg.type
            if kind is _TEXT or kind is _BINARY:
                data: bytes = msg.data
                counters.frames_out += 1
                counters.bytes_out += len(data)
                received = self._sending_since = clock()
                picked = tap(data) if kind is _TEXT else None
                decision = decide(picked) if picked is not None else None
                try:
                    await send(data, kind)
                except ConnectionResetError:
                    return self.session.client_gone(None, "", dropped=True)
                self._sending_since = 0.0
                if counters.frames_out & _SAMPLE_MASK == 1:  # 1st, 65th, 129th… frame
                    sent = clock()
                    if counters.frames_out == 1:
                        self.first_frame_at = sent
                    if len(self.latency_samples) < _MAX_SAMPLES:
                        self.latency_samples.append(sent - received)
                if decision is not None and (end := await self._act(decision)) is not None:
                    return end
            elif kind is WSMsgType.CLOSE:
                return self.session.upstream_gone(msg.data, msg.extra or "", dropped=False)
            elif kind is WSMsgType.ERROR and _is_too_big(msg.data):
                return self.session.too_large("upstream")
            else:
                return self.session.upstream_gone(None, "", dropped=True)

    async def _watchdog(self) -> End:
        t = self.session.timeouts
        limits = [x for x in (t.idle, t.slow_consumer, t.max_session) if x is not None]
        tick = max(0.05, min(1.0, *(x / 4 for x in limits)))
        session, counters, clock = self.session, self.counters, self.clock
        while True:
            await asyncio.sleep(tick)
            activity = counters.frames_in + counters.frames_out
            decision = session.tick(clock(), activity, self._sending_since)
            if decision is not None and (end := await self._act(decision)) is not None:
                return end

    async def _act(self, decision: Actions | End) -> End | None:
        """Carry out the session's decision; return the ``End`` if it is one."""
        if isinstance(decision, End):
            return decision
        for response_id in decision.cancel:
            with contextlib.suppress(ConnectionError):
                await self.upstream.send_frame(response_cancel(response_id), _TEXT)
        if decision.notify is not None:
            await self._send_error(decision.notify)
        return None

    async def _send_error(self, error: RelayError, client_event_id: str | None = None) -> None:
        live = self.session.protocol.name == "live"
        payload = error_frame(error, client_event_id, live=live)
        with contextlib.suppress(ConnectionError):
            await self.client.send_frame(payload, _TEXT)

    async def _finish(self, end: End) -> None:
        """Close both legs as the session core's close plan says."""
        plan = self.session.close_plan(end)
        self.client_close_code, self.upstream_close_code = _recorded_codes(end, plan.client)
        if plan.farewell is not None and not self.upstream.closed:
            with contextlib.suppress(ConnectionError):
                await self._guarded(self.upstream.send_frame(plan.farewell, _TEXT))
        if plan.upstream_first:
            await self._close_upstream(plan.upstream)
        if plan.error_event is not None:
            _clear_cancelled_drain(self.client_transport)
            if not self.client.closed:
                await self._guarded(self._send_error(plan.error_event))
        if plan.client is not None:
            await self._close_client(*plan.client)
        if not plan.upstream_first:
            await self._close_upstream(plan.upstream)

    async def _close_upstream(self, close: tuple[int, str] | None) -> None:
        if close is None or self.upstream.closed:  # aiohttp closed it itself on a huge frame
            return
        if self.upstream_close_code is None:
            self.upstream_close_code = close[0]
        await self._guarded(self.upstream.close(code=close[0], message=close[1].encode()))

    async def _close_client(self, code: int, reason: str) -> None:
        if self.client.closed:
            return
        ok = await self._guarded(self.client.close(code=code, message=reason.encode()[:123]))
        if not ok and self.client_transport is not None:
            self.client_transport.abort()

    @staticmethod
    async def _guarded(awaitable: Any) -> bool:
        """Await a close step with a deadline; a peer that went silent must not hold us.

        aiohttp shares one drain-waiter future per connection, so the pump we just
        cancelled (blocked sending to a slow client) cancelled that future too, and a
        close step waiting on it sees a ``CancelledError`` not aimed at this task.
        """
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await awaitable
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return False
        except (TimeoutError, ConnectionError, aiohttp.ClientError):
            return False
        return True


def _recorded_codes(end: End, to_client: tuple[int, str] | None) -> tuple[int | None, int | None]:
    """(client, upstream) close codes for the session row: what each side itself sent,
    or what the relay sent it when the relay ended the session."""
    if end.error is not None:
        return end.error.close_code, None  # the upstream code is set as it is sent
    if end.closer == "client":
        return (None if end.dropped else end.code), None
    return (to_client[0] if to_client else None), end.code


def _clear_cancelled_drain(transport: asyncio.Transport | None) -> None:
    """Let the client's explanation through after a pump blocked on it was cancelled.

    aiohttp (3.14 ``BaseProtocol._drain_helper``) parks every writer of a connection
    on one shared, unshielded future; cancelling the pump that waited on it cancels
    the future, and every later drain (the error event, the close frame) fails at
    once until the peer reads again. The slow-consumer close would then abort the
    socket and the client would only ever see 1006, never why.
    """
    protocol = transport.get_protocol() if transport is not None else None
    waiter = getattr(protocol, "_drain_waiter", None)
    if waiter is not None and waiter.done():
        protocol._drain_waiter = None  # type: ignore[union-attr]


def _is_too_big(exc: object) -> bool:
    return getattr(exc, "code", None) == CloseCode.MESSAGE_TOO_BIG
