"""``RealtimeConnection``: a Realtime WebSocket that reconnects and never crashes its process.

One supervisor task per connection owns the socket: it dials, flushes queued
sends, reads events into a bounded inbox, classifies every failure, and retries
by the policy. Everything else (``send``, ``recv``, ``close``) runs in the
caller's task and only talks to the supervisor through state, the outbox and
the inbox. ``close()`` cancels the supervisor and awaits it; the supervisor's
``finally`` closes the socket (if one ever opened) and the HTTP session, so no
task, socket or session outlives ``close()`` and no exception reaches the loop.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import random
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import orjson

from rtrelay.errors import is_sendable_close_code

from ._backoff import RetryDecision, RetryPolicy, backoff_delays, default_retry_policy
from ._classify import error_from_close
from ._config import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECTION_TIMEOUT,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_ENQUEUED_MESSAGES,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_QUEUED_EVENTS,
    DEFAULT_MAX_RECONNECTION_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MIN_RECONNECTION_DELAY,
    DEFAULT_MIN_UPTIME,
    DEFAULT_RECONNECTION_DELAY_GROW_FACTOR,
    Limits,
    Reconnect,
)
from ._exceptions import (
    APIError,
    ConnectionClosed,
    ConnectionClosedError,
    InvalidStateError,
    NetworkError,
    QueueFullError,
    RealtimeError,
)
from ._handshake import Auth, build_handshake
from ._inbox import EndOfStream, Inbox
from ._log import client_log
from ._transport import Opened, new_session, open_websocket

__all__ = ["ConnectionState", "Event", "RealtimeConnection", "Sendable"]

Event = dict[str, Any]
"""A Realtime event as received: the JSON object, parsed."""

Sendable = Mapping[str, Any] | bytes | str
"""What ``send`` takes: an event object, or its JSON text (``str`` or UTF-8 ``bytes``)."""

RECONNECTED: Final = "reconnected"
"""Type of the local event delivered after a reconnect (never sent by a server)."""

_SESSION_UPDATE_TYPES: Final = frozenset({"session.update", "transcription_session.update"})
_SESSION_UPDATE_MARK: Final = b'session.update"'


class ConnectionState(enum.IntEnum):
    """Where a connection is in its life (the WebSocket ``readyState`` values)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


def _encode(event: Sendable) -> tuple[bytes, bool]:
    """The frame's bytes, and whether it is a ``session.update`` (to re-send on reconnect)."""
    if isinstance(event, bytes | bytearray | memoryview):
        data = bytes(event)
    elif isinstance(event, str):
        data = event.encode()
    elif isinstance(event, Mapping):
        data = orjson.dumps(event if isinstance(event, dict) else dict(event))
        return data, event.get("type") in _SESSION_UPDATE_TYPES
    else:
        raise TypeError(f"send() takes a mapping, str or bytes, not {type(event).__name__}")
    if _SESSION_UPDATE_MARK not in data:  # cheap test first; parse only a likely match
        return data, False
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data, False
    return data, isinstance(parsed, dict) and parsed.get("type") in _SESSION_UPDATE_TYPES


class RealtimeConnection:
    """A Realtime API WebSocket with reconnection, a send queue and typed errors.

    Use as ``async with RealtimeConnection(url, api_key=..., model=...) as conn:``,
    then ``await conn.send({...})`` and ``async for event in conn``. Nothing is
    dialled before :meth:`connect` (or ``async with``, unless ``start_closed``).

    Args:
        url: a base URL (``ws://127.0.0.1:8080/v1``, ``/realtime?model=`` is appended)
            or a full URL ending in ``/realtime`` (used as is). ``http(s)`` is accepted.
        api_key: the credential; ``None`` sends none.
        model: the model, added as ``?model=``.
        auth: ``"header"`` (``Authorization: Bearer``) or ``"subprotocol"``
            (``openai-insecure-api-key.<key>``, the browser form).
        beta: ask for the beta API shape.
        azure: send the key as an ``api-key`` header (Azure OpenAI).
        headers: extra handshake headers.
        max_retries: retries after a failure before giving up (``None``: forever).
        min_reconnection_delay, max_reconnection_delay, reconnection_delay_grow_factor:
            the backoff (see :func:`backoff_delays`).
        min_uptime: seconds open after which retries and delays count afresh.
        connection_timeout: seconds for TCP connect plus handshake (``None``: no limit).
        max_enqueued_messages: sends kept while not open; one more raises
            :class:`QueueFullError`.
        max_queued_events: received events kept for the reader; when full, reading
            the socket pauses (backpressure).
        start_closed: ``async with`` does not connect; call :meth:`connect` later.
        resend_session_update: after a reconnect, send again the last
            ``session.update`` sent, before anything queued.
        retry_policy: decides from the failure whether to retry (default:
            :func:`default_retry_policy`).
        on_error: called with every failure, retried or not. Must not block.
        on_state: called with each new :class:`ConnectionState`. Must not block.
        heartbeat: seconds between pings; a missing pong counts as a lost connection.
        close_timeout: seconds to wait for the server's close frame.
        max_message_size: largest server message accepted, in bytes.
        rng: randomness for the backoff jitter (seed it to reproduce delays).

    Raises:
        ValueError: an invalid option (the key is never echoed).
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        auth: Auth = "header",
        beta: bool = False,
        azure: bool = False,
        headers: Mapping[str, str] | None = None,
        max_retries: int | None = DEFAULT_MAX_RETRIES,
        min_reconnection_delay: float = DEFAULT_MIN_RECONNECTION_DELAY,
        max_reconnection_delay: float = DEFAULT_MAX_RECONNECTION_DELAY,
        reconnection_delay_grow_factor: float = DEFAULT_RECONNECTION_DELAY_GROW_FACTOR,
        min_uptime: float = DEFAULT_MIN_UPTIME,
        connection_timeout: float | None = DEFAULT_CONNECTION_TIMEOUT,
        max_enqueued_messages: int = DEFAULT_MAX_ENQUEUED_MESSAGES,
        max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS,
        start_closed: bool = False,
        resend_session_update: bool = True,
        retry_policy: RetryPolicy = default_retry_policy,
        on_error: Callable[[RealtimeError], object] | None = None,
        on_state: Callable[[ConnectionState], object] | None = None,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        rng: random.Random | None = None,
    ) -> None:
        self._handshake = build_handshake(
            url, api_key=api_key, model=model, auth=auth, beta=beta, azure=azure, headers=headers
        )
        self.beta = beta
        self._reconnect = Reconnect(
            max_retries=max_retries,
            min_reconnection_delay=min_reconnection_delay,
            max_reconnection_delay=max_reconnection_delay,
            reconnection_delay_grow_factor=reconnection_delay_grow_factor,
            min_uptime=min_uptime,
        )
        self._limits = Limits(
            connection_timeout=connection_timeout,
            max_enqueued_messages=max_enqueued_messages,
            max_queued_events=max_queued_events,
            heartbeat=heartbeat,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        )
        self._start_closed = start_closed
        self._resend_session_update = resend_session_update
        self._retry_policy = retry_policy
        self._on_error = on_error
        self._on_state = on_state
        self._rng = rng or random.Random()

        self._state = ConnectionState.CLOSED
        self._changed = asyncio.Event()  # set and replaced on every state change
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._send_lock = asyncio.Lock()
        self._outbox: collections.deque[tuple[bytes, bool]] = collections.deque()
        self._inbox: Inbox[Event] = Inbox(self._limits.max_queued_events)
        self._last_session_update: bytes | None = None
        self._ever_opened = False
        self._close_request: tuple[int, str] | None = None
        self._finished = False
        self._error: RealtimeError | None = None
        self._close_code: int | None = None
        self._close_reason = ""
        self._request_id: str | None = None
        self._subprotocol: str | None = None
        self._reconnects = 0

    # -- observation -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL dialled (never carries the key)."""
        return self._handshake.url

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def error(self) -> RealtimeError | None:
        """The failure that ended the connection for good, if one did."""
        return self._error

    @property
    def close_code(self) -> int | None:
        """The close code of the last socket that closed (``None`` while none has)."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    @property
    def request_id(self) -> str | None:
        """``X-Request-Id`` of the last handshake response."""
        return self._request_id

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose (``"realtime"`` in the subprotocol form)."""
        return self._subprotocol

    @property
    def reconnects(self) -> int:
        """How many times the connection re-opened after losing a socket."""
        return self._reconnects

    @property
    def enqueued(self) -> int:
        """Sends waiting for the connection to open."""
        return len(self._outbox)

    def __repr__(self) -> str:
        return f"<RealtimeConnection {self.url} {self._state.name}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if not self._start_closed:
            try:
                await self.connect()
            except BaseException:
                await self.close()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Start connecting (if not already) and wait until the connection is open.

        Retries per the policy while waiting. Cancelling this call stops the
        waiting, not the connecting: :meth:`close` stops that.

        Raises:
            APIError: the failure that made the connection give up.
            InvalidStateError: the connection was closed.
        """
        if self._finished:
            raise self._closed_error("connect")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"rtrelay.client {self.url}"
            )
            self._task.add_done_callback(_retrieve)
        while self._state is not ConnectionState.OPEN:
            if self._finished:
                if self._error is not None and self._close_request is None:
                    raise self._error.with_traceback(None)
                raise self._closed_error("connect")
            await self._changed.wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; safe and idempotent in every state.

        While connecting, the attempt is cancelled (nothing is sent on a socket that
        never opened); while open, a close frame with ``code`` and ``reason`` is sent.
        Returns once the supervisor task, the socket and the HTTP session are gone.
        Queued sends that never went out are dropped.

        Raises:
            ValueError: ``code`` is not one an endpoint may send (RFC 6455 §7.4).
        """
        if not is_sendable_close_code(code):
            raise ValueError(f"close code {code} may not be sent by an endpoint")
        task = self._task
        if self._close_request is None and not self._finished:
            self._close_request = (code, reason[:120])
            if task is None:
                self._finish()
                return
            self._set_state(ConnectionState.CLOSING)
            task.cancel()
        if task is None or task is asyncio.current_task():
            return
        if not task.done():
            await asyncio.wait([task])
        if not self._finished:
            # Cancelled before its first step, the supervisor never ran its ``finally``.
            self._finish()

    # -- sending -----------------------------------------------------------------------

    async def send(self, event: Sendable) -> None:
        """Send an event now if open, else queue it to go out, in order, on open.

        Args:
            event: an event object, or its JSON text as ``str`` or UTF-8 ``bytes``.

        Raises:
            QueueFullError: not open and ``max_enqueued_messages`` already queued.
            InvalidStateError: the connection was closed (the cause is chained).
            TypeError: ``event`` is none of the accepted types.
        """
        data, is_session_update = _encode(event)
        if self._finished or self._close_request is not None:
            raise self._closed_error("send")
        async with self._send_lock:
            ws = self._ws
            if self._state is ConnectionState.OPEN and ws is not None:
                try:
                    await self._write(ws, data, is_session_update)
                    return
                except (aiohttp.ClientError, OSError):
                    # The socket died under us; the supervisor is about to notice. The
                    # outbox is empty while open, so queueing keeps the order.
                    pass
            if self._finished or self._close_request is not None:
                raise self._closed_error("send")
            if len(self._outbox) >= self._limits.max_enqueued_messages:
                raise QueueFullError(
                    f"{len(self._outbox)} messages are already queued while the connection "
                    f"is {self._state.name.lower()} (max_enqueued_messages)"
                )
            self._outbox.append((data, is_session_update))

    async def _write(
        self, ws: aiohttp.ClientWebSocketResponse, data: bytes, is_session_update: bool
    ) -> None:
        await ws.send_frame(data, aiohttp.WSMsgType.TEXT)
        if is_session_update:
            self._last_session_update = data

    # -- receiving ---------------------------------------------------------------------

    async def recv(self) -> Event:
        """The next event (after a reconnect, also the local ``reconnected`` event).

        Events received before the end are all delivered before the end is reported.

        Raises:
            ConnectionClosed: the stream ended cleanly (``close()``, or a 1000 close).
            APIError: the failure that made the connection give up.
        """
        try:
            return await self._inbox.get()
        except EndOfStream:
            if self._error is not None and self._close_request is None:
                raise self._error.with_traceback(None) from None
            raise ConnectionClosed(self._close_code, self._close_reason) from None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    # -- the supervisor ----------------------------------------------------------------

    async def _supervise(self) -> None:
        session = new_session()
        try:
            await self._run(session)
        except asyncio.CancelledError:
            raise  # close() cancelled us; the finally below is the cleanup
        except Exception as exc:  # the task's top: a bug here must not reach the loop
            client_log.error("rtrelay.client supervisor failed", exc_info=True)
            error = RealtimeError(f"internal error in rtrelay.client: {exc!r}")
            error.__cause__ = exc
            self._error = error
        finally:
            try:
                await self._close_socket()
            finally:
                await session.close()
                self._finish()

    async def _run(self, session: aiohttp.ClientSession) -> None:
        loop = asyncio.get_running_loop()
        options = self._reconnect
        retries = 0
        delays = self._delays()
        while True:
            self._set_state(ConnectionState.CONNECTING)
            failure: RealtimeError | None
            try:
                opened = await open_websocket(
                    session,
                    self._handshake,
                    timeout=self._limits.connection_timeout,
                    heartbeat=self._limits.heartbeat,
                    close_timeout=self._limits.close_timeout,
                    max_message_size=self._limits.max_message_size,
                )
            except APIError as exc:
                failure = exc
            else:
                self._ws = opened.ws
                opened_at = loop.time()
                failure = await self._session(opened, retries)
                self._ws = None
                if failure is None:
                    return  # the server closed with 1000: a clean end
                if loop.time() - opened_at >= options.min_uptime:
                    retries = 0
                    delays = self._delays()
            decision = self._decide(failure)
            self._report(failure)
            if not decision.retry or (
                options.max_retries is not None and retries >= options.max_retries
            ):
                self._error = failure
                return
            retries += 1
            delay = decision.delay if decision.delay is not None else next(delays)
            client_log.info(
                "rtrelay.client: %s; retry %d in %.2f s", _summary(failure), retries, delay
            )
            await asyncio.sleep(delay)

    def _delays(self) -> collections.abc.Iterator[float]:
        options = self._reconnect
        return backoff_delays(
            options.min_reconnection_delay,
            options.max_reconnection_delay,
            options.reconnection_delay_grow_factor,
            self._rng,
        )

    async def _session(self, opened: Opened, retries: int) -> RealtimeError | None:
        """Flush, then read until the socket closes; the failure, or None if clean."""
        ws = opened.ws
        self._request_id = opened.request_id
        self._subprotocol = opened.subprotocol
        reconnecting = self._ever_opened
        try:
            async with self._send_lock:
                if reconnecting and self._resend_session_update:
                    update = self._last_session_update
                    if update is not None:
                        await self._write(ws, update, True)
                while self._outbox:
                    data, is_session_update = self._outbox[0]
                    await self._write(ws, data, is_session_update)
                    self._outbox.popleft()
                self._ever_opened = True
                self._set_state(ConnectionState.OPEN)
        except (aiohttp.ClientError, OSError) as exc:
            error = NetworkError("the connection broke while sending queued messages")
            error.__cause__ = exc
            return error
        client_log.info("rtrelay.client: open %s (request id %s)", self.url, opened.request_id)
        if reconnecting:
            self._reconnects += 1
            await self._inbox.put(
                {
                    "type": RECONNECTED,
                    "reconnects": self._reconnects,
                    "retries": retries,
                    "session_update_resent": self._resend_session_update
                    and self._last_session_update is not None,
                }
            )
        return await self._read(ws, opened.request_id)

    async def _read(
        self, ws: aiohttp.ClientWebSocketResponse, request_id: str | None
    ) -> RealtimeError | None:
        last_error: Event | None = None  # the error event right before a close explains it
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT or msg.type is aiohttp.WSMsgType.BINARY:
                try:
                    event = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    self._report(ConnectionClosedError("the server sent a frame that is not JSON"))
                    continue
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    self._report(
                        ConnectionClosedError("the server sent JSON that is not an event object")
                    )
                    continue
                last_error = event if event["type"] == "error" else None
                await self._inbox.put(event)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                code = int(msg.data)
                reason = str(msg.extra or "")
                self._close_code, self._close_reason = code, reason
                client_log.info("rtrelay.client: closed by the server, %d %s", code, reason)
                return error_from_close(code, reason, last_error, request_id=request_id)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                self._close_code, self._close_reason = ws.close_code or 1006, ""
                return _read_error(msg.data, self._limits.max_message_size, request_id)
            else:  # CLOSED without a close frame: the TCP connection just ended
                self._close_code, self._close_reason = 1006, ""
                return NetworkError(
                    "the connection was lost without a close frame",
                    close_code=1006,
                    request_id=request_id,
                )

    async def _close_socket(self) -> None:
        ws, self._ws = self._ws, None
        if ws is None or ws.closed:
            return
        code, reason = self._close_request or (1000, "")
        await ws.close(code=code, message=reason.encode())
        if self._close_code is None or self._close_request is not None:
            self._close_code, self._close_reason = code, reason

    # -- state and callbacks -----------------------------------------------------------

    def _finish(self) -> None:
        self._finished = True
        self._set_state(ConnectionState.CLOSED)
        self._inbox.end()

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        client_log.debug("rtrelay.client: %s -> %s", self._state.name, state.name)
        self._state = state
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:  # a boundary: the user's callback must not break the connection
                client_log.error("rtrelay.client: on_state callback failed", exc_info=True)

    def _report(self, error: RealtimeError) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(error)
        except Exception:  # a boundary: the user's callback must not break the connection
            client_log.error("rtrelay.client: on_error callback failed", exc_info=True)

    def _decide(self, error: RealtimeError) -> RetryDecision:
        if self._close_request is not None:
            return RetryDecision.give_up()
        try:
            return self._retry_policy(error)
        except Exception:  # a boundary: a broken policy gives up rather than crash
            client_log.error("rtrelay.client: retry_policy failed", exc_info=True)
            return RetryDecision.give_up()

    def _closed_error(self, action: str) -> InvalidStateError:
        error = InvalidStateError(f"cannot {action}: the connection is closed")
        error.__cause__ = self._error
        return error


def _read_error(exc: object, max_message_size: int, request_id: str | None) -> RealtimeError:
    if isinstance(exc, aiohttp.WebSocketError) and exc.code == 1009:
        return ConnectionClosedError(
            f"the server sent a message over max_message_size ({max_message_size} bytes)",
            fault="client",
            close_code=1009,
            request_id=request_id,
        )
    if isinstance(exc, aiohttp.ServerTimeoutError):
        error: RealtimeError = NetworkError(
            "no answer to a ping within the heartbeat interval",
            close_code=1006,
            request_id=request_id,
        )
    elif isinstance(exc, aiohttp.WebSocketError):
        error = ConnectionClosedError(
            f"WebSocket protocol error from the server: {exc}",
            close_code=exc.code,
            request_id=request_id,
        )
    else:
        error = NetworkError(
            f"the connection failed: {exc!r}", close_code=1006, request_id=request_id
        )
    if isinstance(exc, BaseException):
        error.__cause__ = exc
    return error


def _summary(error: RealtimeError) -> str:
    return f"{type(error).__name__}: {error}"


def _retrieve(task: asyncio.Task[None]) -> None:
    """Done-callback: mark any exception retrieved so the loop never reports it.

    The supervisor catches everything but cancellation itself; this is the belt to
    those braces.
    """
    if not task.cancelled():
        task.exception()
