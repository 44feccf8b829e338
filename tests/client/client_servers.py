"""Small real servers on 127.0.0.1 for the client tests.

They reproduce what rtrelay answers (DESIGN.md "Errors: one table") byte for byte
where it matters: an HTTP refusal with an OpenAI-style JSON body and
``X-Request-Id``, or a 101 followed by an ``error`` event and a close code; plus
the misbehaving servers the client must survive (silent, stalling mid-handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

WsHandler = Callable[[web.WebSocketResponse, web.Request], Awaitable[None]]


@dataclasses.dataclass
class Served:
    """A running server: its base URL and what it saw."""

    port: int
    requests: list[web.Request | None] = dataclasses.field(default_factory=list)
    received: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    headers: list[dict[str, str]] = dataclasses.field(default_factory=list)
    protocols: list[list[str]] = dataclasses.field(default_factory=list)
    closes: list[tuple[int | None, str]] = dataclasses.field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    @property
    def attempts(self) -> int:
        return len(self.headers)


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, port: int = 0) -> AsyncIterator[int]:
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def _record(served: Served, request: web.Request) -> None:
    served.headers.append(dict(request.headers))
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    served.protocols.append([p.strip() for p in offered.split(",") if p.strip()])


@contextlib.asynccontextmanager
async def refusing(
    status: int, body: dict[str, Any] | str | None, headers: dict[str, str] | None = None
) -> AsyncIterator[Served]:
    """Answer every handshake with ``status``, ``body`` (JSON if a dict) and ``headers``."""
    served = Served(port=0)

    async def handle(request: web.Request) -> web.StreamResponse:
        _record(served, request)
        if isinstance(body, dict):
            return web.json_response(body, status=status, headers=headers)
        return web.Response(text=body or "", status=status, headers=headers)

    app = web.Application()
    app.router.add_get("/v1/realtime", handle)
    async with serve_app(app) as port:
        served.port = port
        yield served


async def echo_session(ws: web.WebSocketResponse, served: Served) -> None:
    """``session.created``, then one ``echo`` event per client event; records the close."""
    await ws.send_str(json.dumps({"type": "session.created", "session": {"id": "sess_1"}}))
    while True:
        msg = await ws.receive()
        if msg.type is not WSMsgType.TEXT:
            if msg.type is WSMsgType.CLOSE:
                served.closes.append((msg.data, msg.extra or ""))
            return
        event = json.loads(msg.data)
        served.received.append(event)
        await ws.send_str(json.dumps({"type": "echo", "of": event.get("type")}))


@contextlib.asynccontextmanager
async def websocket_server(
    session: Callable[[web.WebSocketResponse, Served], Awaitable[None]] = echo_session,
    *,
    port: int = 0,
    request_id: str | None = "req_test",
    served: Served | None = None,
) -> AsyncIterator[Served]:
    """A WebSocket endpoint at /v1/realtime that echoes ``realtime`` when offered."""
    served = served or Served(port=port)
    sockets: set[web.WebSocketResponse] = set()

    async def handle(request: web.Request) -> web.StreamResponse:
        _record(served, request)
        ws = web.WebSocketResponse(protocols=["realtime"])
        if request_id:
            ws.headers["X-Request-Id"] = request_id
        await ws.prepare(request)
        sockets.add(ws)
        try:
            await session(ws, served)
        finally:
            sockets.discard(ws)
            await ws.close()
        return ws

    async def close_sockets(app: web.Application) -> None:
        for ws in list(sockets):
            await ws.close(code=1001, message=b"going away")

    app = web.Application()
    app.router.add_get("/v1/realtime", handle)
    app.on_shutdown.append(close_sockets)
    async with serve_app(app, port) as bound:
        served.port = bound
        yield served


def event_refusal(
    error: dict[str, Any], close_code: int, reason: str
) -> Callable[[web.WebSocketResponse, Served], Awaitable[None]]:
    """rtrelay's event-style refusal: 101, the ``error`` event, then the close."""

    async def session(ws: web.WebSocketResponse, served: Served) -> None:
        await ws.send_str(json.dumps(error))
        await ws.close(code=close_code, message=reason.encode())

    return session


@contextlib.asynccontextmanager
async def raw_tcp_server(
    on_connect: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[tuple[int, list[asyncio.Event]]]:
    """A bare TCP server; yields its port and, per connection, an event set on client EOF."""
    closed: list[asyncio.Event] = []
    writers: set[asyncio.StreamWriter] = set()
    handlers: set[asyncio.Future[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gone = asyncio.Event()
        closed.append(gone)
        writers.add(writer)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handlers.add(done)
        try:
            await on_connect(reader, writer)
            while await reader.read(4096):  # until the client closes its side
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            gone.set()
            writer.close()
            done.set_result(None)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, closed
    finally:
        server.close()
        # Closing the transports ends the handlers; cancelling them would trip an
        # asyncio.streams callback that calls exception() on a cancelled task.
        for writer in writers:
            writer.transport.abort()
        await asyncio.gather(*handlers)
        await server.wait_closed()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept the TCP connection and never answer the handshake."""


async def stall_mid_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request, send half a 101 response, then stall."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
    await writer.drain()


async def drain(conn: Any, into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Enter ``conn`` and read every event until the stream ends (or raises)."""
    received = [] if into is None else into
    async with conn:
        async for event in conn:
            received.append(event)
    return received


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
