"""The bridge: two pumps that forward frames untouched, and the watchdog.

Frames arrive as bytes (``decode_text=False``) and leave through
``send_frame`` with their original opcode, so nothing is decoded or
re-serialised on the way. Backpressure is aiohttp's: ``send_frame`` waits while
the receiving side's transport is over its high-water mark, so the pump stops
reading and the sender's TCP window closes. Only a send blocked for longer than
the slow-consumer limit ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from rtrelay.bridge.taps import client_tap, server_tap
from rtrelay.config import Timeouts
from rtrelay.errors import (
    CloseCode,
    IdleTimeout,
    MessageTooLarge,
    RelayError,
    SessionExpired,
    SlowConsumer,
    UpstreamDisconnected,
    UpstreamMessageTooLarge,
    is_sendable_close_code,
)
from rtrelay.log import bridge_log

__all__ = ["Bridge", "ClientLeg", "Ending", "Meter", "NullMeter", "Verdict", "new_event_id"]

CLOSE_TIMEOUT: Final = 5.0
"""How long a close handshake may take before the transport is aborted."""

_SAMPLE_MASK: Final = 63
_MAX_SAMPLES: Final = 1024
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY


def new_event_id() -> str:
    return "event_" + secrets.token_hex(11)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the meter wants done besides forwarding: cancel responses, explain, end."""

    cancel: tuple[str, ...] = ()
    """Response ids to cancel upstream (``response.cancel``)."""
    notify: RelayError | None = None
    """An ``error`` event for the client; the session goes on."""
    end: RelayError | None = None
    """End the session with this error."""


class Meter(Protocol):
    """What the bridge asks about the few frames it parses (gate and ledger answer)."""

    def on_client_event(self, kind: str, event: dict[str, Any]) -> RelayError | None:
        """Return an error to refuse the event (it is not forwarded); None forwards it."""

    def on_server_event(self, kind: str, event: dict[str, Any]) -> Verdict | None:
        """What to do after this event is forwarded; None: nothing."""

    def ending(self) -> RelayError | None:
        """After a refusal: an error that should end the session now, if any."""

    def tick(self, now: float) -> Verdict | None:
        """Called by the watchdog about once a second (``now`` on the bridge's clock)."""


class NullMeter:
    def on_client_event(self, kind: str, event: dict[str, Any]) -> RelayError | None:
        return None

    def on_server_event(self, kind: str, event: dict[str, Any]) -> Verdict | None:
        return None

    def ending(self) -> RelayError | None:
        return None

    def tick(self, now: float) -> Verdict | None:
        return None


class ClientLeg(web.WebSocketResponse):
    """The client's WebSocket, explaining the one close aiohttp sends on its own.

    When a client frame exceeds ``max_msg_size`` aiohttp closes with 1009 from
    inside ``receive()``, before the relay sees anything; this hook sends the
    ``message_too_large`` error event first and gives the close its reason.
    """

    async def close(
        self, *, code: int = CloseCode.NORMAL, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == CloseCode.MESSAGE_TOO_BIG and not message and not self.closed:
            error = MessageTooLarge()
            with contextlib.suppress(ConnectionError):
                await self.send_frame(orjson.dumps(error.to_event(new_event_id())), _TEXT)
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


Closer = Literal["client", "upstream", "relay"]


@dataclass(slots=True)
class Ending:
    """How a session ended: who closed, with which code, or which table error."""

    closer: Closer
    code: int | None = None
    reason: str = ""
    dropped: bool = False
    error: RelayError | None = None


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
    timeouts: Timeouts
    meter: Meter = field(default_factory=NullMeter)
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

    async def run(self) -> Ending:
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        tasks: set[asyncio.Future[Any]] = {
            asyncio.create_task(self._client_to_upstream(), name="rtrelay.c2u"),
            asyncio.create_task(self._upstream_to_client(), name="rtrelay.u2c"),
            asyncio.create_task(self._watchdog(), name="rtrelay.watchdog"),
        }
        try:
            done, _ = await asyncio.wait({*tasks, self._stop}, return_when=asyncio.FIRST_COMPLETED)
            ending = self._first_ending(done)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not self._stop.done():
                self._stop.cancel()
        await self._finish(ending)
        return ending

    def _first_ending(self, done: set[asyncio.Future[Any]]) -> Ending:
        if self._stop is not None and self._stop in done:
            return Ending("relay", error=self._stop.result())
        for future in done:
            exc = future.exception()
            if exc is not None:
                bridge_log.error("bridge task failed", exc_info=exc)
                return Ending("relay", error=RelayError())
        result: Ending = next(iter(done)).result()
        return result

    async def _client_to_upstream(self) -> Ending:
        receive = self.client.receive
        send = self.upstream.send_frame
        meter = self.meter
        counters = self.counters
        while True:
            msg = await receive()
            kind = msg.type
            if kind is _TEXT or kind is _BINARY:
                data: bytes = msg.data
                counters.frames_in += 1
                counters.bytes_in += len(data)
                if (tap := client_tap(data)) is not None:  # binary frames too: no side door
                    if isinstance(tap, RelayError):
                        await self._send_error(tap)
                        continue
                    refusal = meter.on_client_event(*tap)
                    if refusal is not None:
                        if (end := meter.ending()) is not None:
                            return Ending("relay", error=end)
                        await self._send_error(refusal, tap[1].get("event_id"))
                        continue
                try:
                    await send(data, kind)
                except ConnectionResetError:
                    return Ending("upstream", dropped=True, error=UpstreamDisconnected())
            elif kind is WSMsgType.CLOSE:
                return Ending("client", code=msg.data, reason=msg.extra or "")
            elif kind is WSMsgType.ERROR and _is_too_big(msg.data):
                return Ending("relay", error=MessageTooLarge(), code=CloseCode.MESSAGE_TOO_BIG)
            else:  # CLOSED, CLOSING, ERROR: the client's connection is gone
                return Ending("client", dropped=True)

    async def _upstream_to_client(self) -> Ending:
        receive = self.upstream.receive
        send = self.client.send_frame
        meter = self.meter
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
                verdict = None
                if kind is _TEXT and (tap := server_tap(data)) is not None:
                    verdict = meter.on_server_event(*tap)
                try:
                    await send(data, kind)
                except ConnectionResetError:
                    return Ending("client", dropped=True)
                self._sending_since = 0.0
                if counters.frames_out & _SAMPLE_MASK == 1:  # 1st, 65th, 129th… frame
                    sent = clock()
                    if counters.frames_out == 1:
                        self.first_frame_at = sent
                    if len(self.latency_samples) < _MAX_SAMPLES:
                        self.latency_samples.append(sent - received)
                if verdict is not None and (end := await self._act(verdict)) is not None:
                    return Ending("relay", error=end)
            elif kind is WSMsgType.CLOSE:
                return Ending("upstream", code=msg.data, reason=msg.extra or "")
            elif kind is WSMsgType.ERROR and _is_too_big(msg.data):
                return Ending("relay", error=UpstreamMessageTooLarge())
            else:
                return Ending("upstream", dropped=True, error=UpstreamDisconnected())

    async def _watchdog(self) -> Ending:
        t = self.timeouts
        limits = [x for x in (t.idle, t.slow_consumer, t.max_session) if x is not None]
        tick = max(0.05, min(1.0, *(x / 4 for x in limits)))
        started = self.clock()
        last_total = -1
        last_change = started
        meter = self.meter
        while True:
            await asyncio.sleep(tick)
            now = self.clock()
            if (verdict := meter.tick(now)) is not None and (
                end := await self._act(verdict)
            ) is not None:
                return Ending("relay", error=end)
            if self._sending_since and now - self._sending_since > t.slow_consumer:
                return Ending("relay", error=SlowConsumer())
            if t.max_session is not None and now - started >= t.max_session:
                return Ending(
                    "relay",
                    error=SessionExpired(
                        f"The session hit the relay's maximum duration of {t.max_session:g} s."
                    ),
                )
            c = self.counters
            total = c.frames_in + c.frames_out
            if total != last_total:
                last_total, last_change = total, now
            elif t.idle is not None and now - last_change >= t.idle and not self._sending_since:
                return Ending("relay", error=IdleTimeout())

    async def _act(self, verdict: Verdict) -> RelayError | None:
        """Carry out a meter's verdict; return the error to end the session with, if any."""
        for response_id in verdict.cancel:
            cancel = {
                "type": "response.cancel",
                "event_id": new_event_id(),
                "response_id": response_id,
            }
            with contextlib.suppress(ConnectionError):
                await self.upstream.send_frame(orjson.dumps(cancel), _TEXT)
        if verdict.notify is not None:
            await self._send_error(verdict.notify)
        return verdict.end

    async def _send_error(self, error: RelayError, client_event_id: Any = None) -> None:
        event_id = client_event_id if isinstance(client_event_id, str) else None
        payload = orjson.dumps(error.to_event(new_event_id(), event_id))
        with contextlib.suppress(ConnectionError):
            await self.client.send_frame(payload, _TEXT)

    async def _finish(self, ending: Ending) -> None:
        """Close both legs with codes that say what happened (DESIGN.md close rules)."""
        if ending.error is not None:
            # The provider has nothing more to say to a session the relay ends: free it
            # first, so a client that is slow to read the explanation holds nothing upstream.
            error = ending.error
            if not self.upstream.closed:  # aiohttp closed it itself on an oversized frame
                self.upstream_close_code = CloseCode.GOING_AWAY
                await self._guarded(
                    self.upstream.close(code=CloseCode.GOING_AWAY, message=b"relay closed")
                )
            _clear_cancelled_drain(self.client_transport)
            if not self.client.closed:
                await self._guarded(self._send_error(error))
            self.client_close_code = error.close_code
            await self._close_client(error.close_code, error.close_reason())
        elif ending.closer == "client":
            code = CloseCode.GOING_AWAY if ending.dropped else _relayable(ending.code)
            reason = "client disconnected" if ending.dropped else ending.reason
            self.client_close_code = None if ending.dropped else ending.code
            self.upstream_close_code = code
            await self._guarded(self.upstream.close(code=code, message=reason.encode()))
            await self._close_client(code, ending.reason)
        else:  # the provider closed properly
            code = _relayable(ending.code)
            self.upstream_close_code = ending.code
            self.client_close_code = code
            await self._close_client(code, ending.reason)
            await self._guarded(self.upstream.close(code=code))

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


def _relayable(code: int | None) -> int:
    """A peer's close code as we may send it on (1005 "no code" becomes 1000)."""
    if code is None or not is_sendable_close_code(code):
        return CloseCode.NORMAL
    return code
