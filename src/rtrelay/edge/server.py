"""The listening socket: aiohttp's server with the limits an edge needs before any upgrade.

Left alone, aiohttp gives a connection that never finishes its request about an
hour (its keep-alive timer), keeps any number of them, and answers an unreadable
request with a plain-text 400 that quotes the offending header line (a key
included) and logs it at ERROR. ``listen`` serves an app whose connections instead:

* must deliver a whole request, head and body, within ``timeouts.request`` of
  opening (a kept-alive connection: of the next request's first byte; its idle
  wait is aiohttp's 75 s keep-alive); a request cut short gets the table's 408,
  a connection that sent nothing is closed without a word;
* may only be ``limits.max_pending_connections`` at once while waiting for a
  request head, and never more than half the open-file limit, so live sessions
  always find descriptors. Past the cap the *oldest* waiting connection is
  closed: a flood of idle sockets evicts itself, while a real client, whose
  request follows its connect within a round trip, is the newest and gets in.
  (Refusing new connections instead would let the flood starve everyone until
  its deadlines ran out, then start again.) A connection whose request is being
  handled is not pending: the handshake deadline and the key's limits bound it;
* get the table's ``malformed_request`` JSON 400 with an ``X-Request-Id`` when the
  request cannot be parsed, and a log line naming the parser's error class, never
  its message (which quotes the request);
* tell the relay when the client hangs up while its handshake is being admitted
  or dialed (``client_watch``), so the dial is cancelled and its lease returned.

Each early close is counted in ``rtrelay_pre_upgrade_closed_total{reason}`` and
logged, at most one line per reason a second (a burst is summed into the next).

With an ``ssl_context`` (``[server] tls_cert``: https:// and wss://, see ``edge/tls.py``)
the handler only sees a connection once its TLS handshake is done, so the handshake
gets its own deadline, ``timeouts.request`` again (asyncio's default is 60 s), and is
not counted against the cap while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from rtrelay.config import Settings
from rtrelay.edge.handshake import new_request_id
from rtrelay.edge.refuse import http_refusal
from rtrelay.errors import ClientGone, InternalError, MalformedRequest, RelayError, RequestTimeout
from rtrelay.log import edge_log
from rtrelay.observe.metrics import Metrics

__all__ = ["EdgeRunner", "Protections", "client_watch", "listen", "pending_cap"]

KEEPALIVE_TIMEOUT: Final = 75.0
"""aiohttp's own idle timer (``web.run_app``'s value; the handler's default is ~1 h): how long
a kept-alive connection may idle between requests, and a backstop when ``timeouts.request``
is off."""

LOG_EVERY: Final = 1.0
"""Seconds between two log lines about early closes of one reason."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Protections:
    """What ``listen`` enforces before a request reaches the app."""

    request_timeout: float | None
    max_pending: int
    metrics: Metrics | None = None

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> Protections:
        return cls(
            request_timeout=settings.timeouts.request,
            max_pending=settings.limits.max_pending_connections,
            metrics=metrics,
        )


def pending_cap(configured: int) -> int:
    """``configured``, lowered to half the soft open-file limit (each session needs two)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return configured
    return max(1, min(configured, soft // 2))


async def listen(
    app: web.Application,
    *,
    host: str,
    port: int,
    protections: Protections,
    reuse_port: bool = False,
    shutdown_timeout: float = 60.0,
    ssl_context: ssl.SSLContext | None = None,
) -> EdgeRunner:
    """Serve ``app`` on ``host:port`` with ``protections``; ``runner.cleanup()`` stops it.

    ``ssl_context``: serve TLS (https://, wss://) with it; it stays the live context, so
    certificates loaded into it later apply to new connections (``edge/tls.py``).
    """
    runner = EdgeRunner(
        app,
        protections,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    try:
        site = _EdgeSite(
            runner,
            host,
            port,
            reuse_port=reuse_port or None,
            ssl_context=ssl_context,
            ssl_handshake_timeout=protections.request_timeout,
        )
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


class _EdgeSite(web.TCPSite):
    """``TCPSite``, with a deadline on the TLS handshake (aiohttp leaves asyncio's 60 s)."""

    __slots__ = ("_handshake_timeout",)

    def __init__(
        self, *args: Any, ssl_handshake_timeout: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._handshake_timeout = ssl_handshake_timeout

    async def start(self) -> None:
        if self._ssl_context is None or self._handshake_timeout is None:
            await super().start()
            return
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._handshake_timeout,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


class EdgeRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are ``_EdgeHandler``s."""

    __slots__ = ("_edge", "_protections")

    def __init__(self, app: web.Application, protections: Protections, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._protections = protections
        self._edge: _EdgeServer | None = None

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's start-up, builds its kwargs
        self._edge = _EdgeServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            protections=self._protections,
            **plain._kwargs,
        )
        if self._edge.cap < self._protections.max_pending:
            edge_log.info(
                "pending-connection cap lowered to half the open-file limit",
                extra={"event": "pending_cap", "max_pending_connections": self._edge.cap},
            )
        return self._edge

    async def cleanup(self) -> None:
        try:
            await super().cleanup()
        finally:
            if self._edge is not None:
                self._edge.tally.close()


class _EdgeServer(web.Server):
    """aiohttp's ``Server`` making ``_EdgeHandler``s, and the state they share."""

    def __init__(self, handler: Any, *, protections: Protections, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.protections = protections
        self.cap = pending_cap(protections.max_pending)
        self.waiting: dict[_EdgeHandler, None] = {}
        """Connections waiting for a request head, oldest first (dicts keep insertion order)."""
        self.tally = _Tally(asyncio.get_running_loop())

    def __call__(self) -> RequestHandler:
        return _EdgeHandler(self, loop=self._loop, **self._kwargs)

    def closed_early(self, reason: str, peer: Any) -> None:
        metrics = self.protections.metrics
        if metrics is not None:
            metrics.pre_upgrade_closed.labels(reason).inc()
        self.tally.add(reason, peer)


class _EdgeHandler(RequestHandler):
    """One client connection: aiohttp's handler plus the request deadline and the cap.

    States: *waiting* (no request head yet: counted against the cap, under the
    deadline), *reading a body* (still under the deadline), *handled* (the app has
    the request; nothing here applies), then waiting again on keep-alive.
    """

    __slots__ = ("_body", "_deadline", "_edge", "_heard", "_waiting", "_watchers")

    def __init__(self, manager: _EdgeServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._edge = manager  # aiohttp drops its own reference when the connection is lost
        self._deadline: asyncio.TimerHandle | None = None
        self._heard = 0
        """Bytes of the awaited request received so far (408 or a silent close)."""
        self._waiting = False
        self._body: StreamReader | None = None
        self._watchers: list[_ClientWatch] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._await_request()

    def data_received(self, data: bytes) -> None:
        if not self._waiting:  # the common case, an upgraded session's frames: one test
            RequestHandler.data_received(self, data)
            return
        if not self._heard and self._deadline is None:
            self._start_deadline()  # a kept-alive connection's next request starts now
        self._heard += len(data)
        RequestHandler.data_received(self, data)
        if self._messages:
            self._head_arrived()

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._stop_waiting()
        self._cancel_deadline()
        self._body = None
        watchers, self._watchers = self._watchers, []
        for watch in watchers:
            watch.client_left()

    async def _handle_request(self, request: Any, start_time: Any, request_handler: Any) -> Any:
        resp, reset = await super()._handle_request(request, start_time, request_handler)
        self._body = None
        self._cancel_deadline()
        if not reset and resp.keep_alive and not (self._force_close or self._close):
            self._await_request()
        return resp, reset

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The table's JSON instead of aiohttp's text, which may quote a header line."""
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; no error response can follow")
        request_id = new_request_id()
        error: RelayError
        if status == HTTPStatus.BAD_REQUEST or isinstance(exc, HttpProcessingError):
            error = MalformedRequest()
            self._edge.closed_early("malformed_request", self.peername)
            edge_log.debug(
                "unreadable request",
                extra={"request_id": request_id, "parser_error": type(exc).__name__},
            )
        else:
            error = InternalError()
            if self.transport is None and isinstance(exc, ConnectionError):
                edge_log.debug("client gone while its request was handled")
            else:
                edge_log.error(
                    "request failed",
                    exc_info=exc,
                    extra={"event": "error", "request_id": request_id, "status": status},
                )
        response = http_refusal(error, request_id)
        response.force_close()
        return response

    def _await_request(self) -> None:
        """Idle until a request head arrives: join the waiting line.

        A new connection's first request is due ``timeouts.request`` after the connect;
        on a kept-alive connection the next one is due that long after its first byte,
        and the idle wait before it is aiohttp's keep-alive timer (and the cap's).
        """
        if self._messages or self.transport is None:
            return
        edge = self._edge
        self._heard = 0
        self._waiting = True
        edge.waiting[self] = None
        if not self._request_count:
            self._start_deadline()
        if len(edge.waiting) > edge.cap:
            next(iter(edge.waiting))._shed("pending_cap")  # the oldest, never self (cap >= 1)

    def _head_arrived(self) -> None:
        self._stop_waiting()
        payload = self._messages[-1][1]
        if payload.is_eof():
            self._cancel_deadline()
        else:
            self._body = payload  # the deadline covers the body too

    def _start_deadline(self) -> None:
        timeout = self._edge.protections.request_timeout
        if timeout is not None:
            self._cancel_deadline()
            self._deadline = self._loop.call_later(timeout, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport is None:
            return
        if self._waiting:
            self._shed("request_timeout", _raw_response(RequestTimeout()) if self._heard else b"")
        elif self._body is not None and not self._body.is_eof():
            self._shed("request_timeout")  # a handler reads it: it gets the disconnection

    def _shed(self, reason: str, response: bytes = b"") -> None:
        self._stop_waiting()
        self._cancel_deadline()
        if response and self.transport is not None:
            self.transport.write(response)
        self._edge.closed_early(reason, self.peername)
        self.force_close()

    def _stop_waiting(self) -> None:
        if self._waiting:
            self._waiting = False
            self._edge.waiting.pop(self, None)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def _raw_response(error: RelayError) -> bytes:
    """A whole response for a connection with no request object to answer through."""
    status = error.http_status or 500
    body = orjson.dumps(error.to_http_body())
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-Id: {new_request_id()}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class _Tally:
    """Log early closes at most once per reason per ``LOG_EVERY``; sum what comes between."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._quiet_until: dict[str, float] = {}
        self._held: Counter[str] = Counter()
        self._flushes: dict[str, asyncio.TimerHandle] = {}

    def add(self, reason: str, peer: Any) -> None:
        now = self._loop.time()
        until = self._quiet_until.get(reason, 0.0)
        if now >= until:
            self._emit(reason, 1, peer)
            self._quiet_until[reason] = now + LOG_EVERY
            return
        self._held[reason] += 1
        if reason not in self._flushes:
            self._flushes[reason] = self._loop.call_at(until, self._flush, reason)

    def close(self) -> None:
        for reason, handle in list(self._flushes.items()):
            handle.cancel()
            self._flush(reason)

    def _flush(self, reason: str) -> None:
        self._flushes.pop(reason, None)
        count = self._held.pop(reason, 0)
        if count:
            self._emit(reason, count, None)
            self._quiet_until[reason] = self._loop.time() + LOG_EVERY

    @staticmethod
    def _emit(reason: str, count: int, peer: Any) -> None:
        edge_log.log(
            # a full waiting line is the operator's business; a timeout or garbage is the Internet
            logging.WARNING if reason == "pending_cap" else logging.INFO,
            "connection closed before a request was handled",
            extra={
                "event": "pre_upgrade_closed",
                "reason": reason,
                "connections": count,
                "peer": f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else None,
            },
        )


def client_watch(request: web.BaseRequest) -> _ClientWatch:
    """``async with client_watch(request):`` cancels the block if the client hangs up
    meanwhile and raises ``ClientGone`` in its place (as ``asyncio.timeout`` raises
    ``TimeoutError``). A cancellation from anyone else passes through unchanged.

    Only connections served by ``listen`` are watched; elsewhere the block just runs.
    """
    protocol = request.protocol
    return _ClientWatch(protocol if isinstance(protocol, _EdgeHandler) else None)


class _ClientWatch:
    __slots__ = ("_cancelling", "_gone", "_protocol", "_task")

    def __init__(self, protocol: _EdgeHandler | None) -> None:
        self._protocol = protocol
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._gone = False

    async def __aenter__(self) -> None:
        if self._protocol is None:
            return
        if self._protocol.transport is None:
            raise ClientGone()
        self._task = asyncio.current_task()
        assert self._task is not None
        self._cancelling = self._task.cancelling()
        self._protocol._watchers.append(self)

    def client_left(self) -> None:
        if self._task is not None and not self._gone:
            self._gone = True
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._protocol is not None:
            with contextlib.suppress(ValueError):
                self._protocol._watchers.remove(self)
        if not self._gone:
            return
        assert self._task is not None
        if self._task.uncancel() > self._cancelling:
            return  # someone else cancelled us too: theirs wins
        raise ClientGone() from exc
