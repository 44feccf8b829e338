"""Observe the HTTP upgrade and the session's first events, the way aiohttp clients see them."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, WSMessage, WSMsgType

from rtrelay.config import DEFAULT_MAX_FRAME_BYTES
from rtrelay.probe._observations import (
    CloseSeen,
    ErrorInfo,
    SessionObservation,
    UpgradeObservation,
)
from rtrelay.probe._redact import redact
from rtrelay.probe._target import HandshakeRequest

__all__ = [
    "SHOWN_HEADERS",
    "HandshakeRecorder",
    "Watch",
    "body_error",
    "error_info",
    "observe_websocket",
    "read_bounded",
    "request_failure",
    "shown_headers",
]

SHOWN_HEADERS: Final = (
    "X-Request-Id",
    "Sec-WebSocket-Protocol",
    "Retry-After",
    "Content-Type",
    "Location",
    "Server",
    "Access-Control-Allow-Origin",
)
"""The answer's headers that explain things; the rest are not recorded."""
_BODY_LIMIT: Final = 16 * 1024
_FINAL: Final = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})
_PROBE_CLOSE_REASON: Final = b"probe finished"


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def error_info(obj: object, secret: str | None) -> ErrorInfo | None:
    """An OpenAI-style ``error`` object (from a body or an event), redacted; ``None`` if not one."""
    if not isinstance(obj, dict):
        return None

    def text(name: str) -> str | None:
        value = obj.get(name)
        return None if value is None else redact(str(value), secret)

    return ErrorInfo(
        type=text("type"), code=text("code"), message=text("message"), param=text("param")
    )


class _Redirected(Exception):
    """Raised by the recorder to stop aiohttp following a redirect browsers would not follow."""


@dataclass(slots=True)
class HandshakeRecorder:
    """Session-level client middleware that keeps what ``ws_connect`` throws away.

    aiohttp raises ``WSServerHandshakeError`` on a non-101 answer without reading
    the body, which is where the server says *why*; this reads it first.
    Redirects are stopped rather than followed: a browser fails the connection,
    and following one would send the key to wherever it points.
    """

    secret: str | None
    answer: UpgradeObservation | None = field(default=None, init=False)

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        start = time.perf_counter()
        response = await handler(request)
        elapsed = _elapsed_ms(start)
        headers = shown_headers(response, self.secret)
        body, error = "", None
        if response.status != 101:
            raw = await read_bounded(response)
            body = redact(raw.decode("utf-8", "replace"), self.secret)
            error = body_error(body, self.secret)
        self.answer = UpgradeObservation(
            status=response.status,
            reason=response.reason or "",
            elapsed_ms=elapsed,
            headers=headers,
            body=body,
            error=error,
        )
        if 300 <= response.status < 400:
            response.release()
            raise _Redirected
        return response


def shown_headers(response: ClientResponse, secret: str | None) -> dict[str, str]:
    """The answer's ``SHOWN_HEADERS``, redacted."""
    return {
        name: redact(response.headers[name], secret)
        for name in SHOWN_HEADERS
        if name in response.headers
    }


async def read_bounded(response: ClientResponse, limit: int = _BODY_LIMIT) -> bytes:
    """At most ``limit`` bytes of the body: enough for an error (or an SDP answer)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def body_error(body: str, secret: str | None) -> ErrorInfo | None:
    """The ``error`` object of an OpenAI-style JSON body, redacted."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return error_info(parsed.get("error"), secret) if isinstance(parsed, dict) else None


async def observe_websocket(
    request: HandshakeRequest,
    *,
    ssl_context: ssl.SSLContext | None,
    timeout: float,
    events: int,
    quiet: float,
    established: str = "session.created",
) -> tuple[UpgradeObservation, SessionObservation | None]:
    """Send the upgrade; if it succeeds, watch the session, then close it with 1000.

    A request with an ``opening`` event sends it first (GPT-Live's ``session.start``);
    one with a ``closing`` event ends an established session with it and waits for the
    server to close (GPT-Live's ``session.close``, so the provider ends the session).

    Args:
        request: the handshake to send (its secret is only ever put on the wire).
        ssl_context: how to verify the server for wss:// (``None``: system defaults).
        timeout: bound on the upgrade, and on the wait for ``session.created``.
        events: close after this many events.
        quiet: after ``session.created`` (or an error), close after this long without events.
        established: the server event that means a session runs (``session.started``: Live).
    """
    recorder = HandshakeRecorder(request.secret)
    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout, middlewares=(recorder,)) as http:
        failure: str
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                ws = await http.ws_connect(
                    request.url,
                    protocols=request.protocols,
                    headers=request.headers,
                    origin=request.origin,
                    ssl=ssl_context if ssl_context is not None else True,
                    max_msg_size=DEFAULT_MAX_FRAME_BYTES,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeout),
                )
        except _Redirected:
            assert recorder.answer is not None
            return recorder.answer, None
        except aiohttp.WSServerHandshakeError as exc:
            answer = recorder.answer
            if answer is not None and answer.status != 101:
                return answer, None
            failure = f"the 101 answer is not a valid WebSocket handshake ({exc.message})"
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = request_failure(exc, timeout, what="the upgrade", secure="wss://")
        else:
            answer = recorder.answer or UpgradeObservation(status=101)
            try:
                session = await _observe_session(
                    ws,
                    Watch(request.secret, start, established),
                    events=events,
                    timeout=timeout,
                    quiet=quiet,
                    opening=request.opening,
                    closing=request.closing,
                )
            finally:
                if not ws.closed:
                    await ws.close()
            return answer, session
    base = recorder.answer or UpgradeObservation()
    return (
        UpgradeObservation(
            status=base.status,
            reason=base.reason,
            elapsed_ms=base.elapsed_ms,
            headers=base.headers,
            failure=redact(failure, request.secret),
        ),
        None,
    )


def request_failure(
    exc: TimeoutError | aiohttp.ClientError, timeout: float, *, what: str, secure: str
) -> str:
    """Why a request got no (valid) HTTP answer, in words; ``secure``: the TLS scheme."""
    if isinstance(exc, TimeoutError):
        return f"no HTTP answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return (
            "the server closed the connection without an HTTP answer "
            f"(if it serves TLS, use {secure})"
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"the answer is not valid HTTP ({exc.message})"
    return f"{what} failed: {exc}"


@dataclass(slots=True)
class Watch:
    """Mutable tally while the session runs; frozen into a ``SessionObservation`` at the end.

    Fed with each text message (a WebSocket frame or a data channel message).
    """

    secret: str | None
    start: float
    """When the upgrade request began: times are counted from there."""
    established: str = "session.created"
    """The event that means a session runs (``session.started`` for GPT-Live)."""
    types: list[str] = field(default_factory=list)
    errors: list[ErrorInfo] = field(default_factory=list)
    created_ms: float | None = None
    session_id: str | None = None
    model: str | None = None

    def text(self, data: str) -> None:
        try:
            event: Any = json.loads(data)
        except ValueError:
            self.types.append("(not JSON)")
            return
        if not isinstance(event, dict):
            self.types.append("(not a JSON object)")
            return
        kind = redact(str(event.get("type", "(no type)")), self.secret)
        self.types.append(kind)
        if kind == self.established and self.created_ms is None:
            self.created_ms = _elapsed_ms(self.start)
            session = event.get("session")
            if isinstance(session, dict):
                self.session_id = _opt_str(session.get("id"))
                self.model = _opt_str(session.get("model"))
        elif kind == "error":
            info = error_info(event.get("error"), self.secret)
            self.errors.append(info or ErrorInfo())

    def message(self, msg: WSMessage) -> bool:
        """Tally a WebSocket message; ``False`` for one that ends the connection."""
        if msg.type is WSMsgType.TEXT:
            self.text(msg.data)
        elif msg.type is WSMsgType.BINARY:
            self.types.append("(binary frame)")
        else:
            return False
        return True

    @property
    def settled(self) -> bool:
        """``session.created`` or an error came: the session's fate is known."""
        return self.created_ms is not None or bool(self.errors)

    def observed(
        self, *, close: CloseSeen | None, timed_out: bool, farewell: str | None = None
    ) -> SessionObservation:
        return SessionObservation(
            event_types=tuple(self.types),
            errors=tuple(self.errors),
            session_created_ms=self.created_ms,
            session_id=self.session_id,
            model=self.model,
            close=close,
            timed_out=timed_out,
            farewell=farewell,
        )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


async def _read(ws: aiohttp.ClientWebSocketResponse, inbox: asyncio.Queue[WSMessage]) -> None:
    while True:
        msg = await ws.receive()
        await inbox.put(msg)
        if msg.type in _FINAL:
            return


async def _observe_session(
    ws: aiohttp.ClientWebSocketResponse,
    watch: Watch,
    *,
    events: int,
    timeout: float,
    quiet: float,
    opening: str | None = None,
    closing: str | None = None,
) -> SessionObservation:
    # Reading in a task of its own: a timed-out ``receive()`` marks the socket as
    # abnormally closed in aiohttp, and the probe wants to close it cleanly with 1000.
    deadline = time.perf_counter() + timeout
    inbox: asyncio.Queue[WSMessage] = asyncio.Queue(maxsize=1)
    reader = asyncio.create_task(_read(ws, inbox))
    close: CloseSeen | None = None
    timed_out = False
    farewell: str | None = None
    try:
        if opening is not None:
            await ws.send_str(opening)
        while len(watch.types) < events:
            settled = watch.settled
            wait = quiet if settled else deadline - time.perf_counter()
            try:
                async with asyncio.timeout(max(wait, 0)):
                    msg = await inbox.get()
            except TimeoutError:
                timed_out = not settled
                break
            if not watch.message(msg):
                close = _close_seen(ws, msg, _elapsed_ms(watch.start), watch.secret)
                break
        if close is None and closing is not None and watch.created_ms is not None:
            farewell = _event_type(closing)
            await ws.send_str(closing)
            close = await _until_closed(ws, inbox, watch, timeout)
        if close is None:
            await ws.close(code=1000, message=_PROBE_CLOSE_REASON)
            close = CloseSeen(by="probe", code=1000, at_ms=_elapsed_ms(watch.start))
    finally:
        if not reader.done():
            reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    return watch.observed(close=close, timed_out=timed_out, farewell=farewell)


async def _until_closed(
    ws: aiohttp.ClientWebSocketResponse,
    inbox: asyncio.Queue[WSMessage],
    watch: Watch,
    timeout: float,
) -> CloseSeen | None:
    """Events up to the server's close (``None``: it did not close within ``timeout``)."""
    try:
        async with asyncio.timeout(timeout):
            while watch.message(msg := await inbox.get()):
                pass
    except TimeoutError:
        return None
    return _close_seen(ws, msg, _elapsed_ms(watch.start), watch.secret)


def _event_type(frame: str) -> str:
    kind: Any = json.loads(frame).get("type")
    return str(kind)


def _close_seen(
    ws: aiohttp.ClientWebSocketResponse, msg: WSMessage, at_ms: float, secret: str | None
) -> CloseSeen:
    if msg.type is WSMsgType.CLOSE:
        reason = redact(str(msg.extra or ""), secret)
        return CloseSeen(by="server", code=int(msg.data), reason=reason, at_ms=at_ms)
    if msg.type is WSMsgType.ERROR:
        return CloseSeen(
            by="network", code=ws.close_code, reason=redact(str(msg.data), secret), at_ms=at_ms
        )
    # CLOSED: the TCP connection ended with no close frame.
    return CloseSeen(by="network", code=1006, at_ms=at_ms)
