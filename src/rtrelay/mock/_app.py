"""The aiohttp application of the simulated provider: endpoints and shared observations."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from aiohttp import web

from rtrelay.mock._calls import add_call_routes, attach_sideband
from rtrelay.mock._connection import Connection, websocket_response
from rtrelay.mock._handshake import Accept, Endpoint, Refuse, decide, offered_subprotocols
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._options import MockOptions
from rtrelay.mock._protocol import RealtimeProtocol
from rtrelay.mock._records import HandshakeRecord, SessionRecord
from rtrelay.mock._state import STATE, MockState
from rtrelay.wire import CALL_ID_PARAM

__all__ = ["create_app"]

logger = logging.getLogger("rtrelay.mock")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(options: MockOptions | None = None, *, record: bool = True) -> web.Application:
    """The simulated provider as an aiohttp application.

    Serves ``GET /v1/realtime?model=M`` (OpenAI), ``GET /openai/realtime?api-version=V&
    deployment=D`` (Azure preview, beta shape), ``GET /openai/v1/realtime?model=D`` (Azure
    GA) and ``GET /healthz``; WebRTC calls: ``POST /v1/realtime/calls`` (the offer),
    ``POST /v1/realtime/calls/{id}/accept|reject|refer|hangup`` and the sideband
    ``GET /v1/realtime?call_id={id}``.

    Args:
        options: behaviour and faults; replace ``app[STATE].options`` to change them for
            later connections.
        record: keep handshakes, sessions and client events for inspection (turn off for
            a long-running server, where they would only grow).
    """
    app = web.Application()
    app[STATE] = MockState(options=options or MockOptions(), record=record)
    for endpoint in Endpoint:
        app.router.add_get(endpoint.value, _realtime_handler(endpoint))
    app.router.add_get("/healthz", _healthz)
    app.on_shutdown.append(_close_sessions)
    add_call_routes(app)
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _realtime_handler(endpoint: Endpoint) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if endpoint is Endpoint.OPENAI and CALL_ID_PARAM in request.query:
            return await attach_sideband(request)
        return await _realtime(request, endpoint)

    return handler


async def _realtime(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    state = request.app[STATE]
    options = state.options  # one snapshot per connection: later changes affect later ones
    subprotocols = offered_subprotocols(request.headers.getall("Sec-WebSocket-Protocol", []))
    handshake = HandshakeRecord(
        path=request.path,
        query=dict(request.query),
        headers={str(name): value for name, value in request.headers.items()},
        subprotocols=subprotocols,
        accepted=False,
    )
    index = len(state.handshakes)
    if state.record:
        state.handshakes.append(handshake)
    if options.stall_handshake:
        await asyncio.sleep(options.stall_handshake)
    decision = decide(endpoint, request.query, request.headers, subprotocols, options)
    if isinstance(decision, Refuse):
        return web.Response(
            status=decision.status,
            text=decision.body,
            content_type="application/json",
            headers={"x-request-id": IdFactory().new("req")},
        )
    ws = websocket_response()
    if not ws.can_prepare(request).ok:
        return web.json_response(
            {
                "error": {
                    "message": "This endpoint only accepts WebSocket upgrade requests.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
            status=426,
            headers={"Upgrade": "websocket"},
        )
    transport = request.transport
    if transport is None or transport.is_closing():
        return ws  # the client gave up during a stalled handshake
    await ws.prepare(request)
    if state.record:
        state.handshakes[index] = replace(handshake, accepted=True)
    await _run_session(request, ws, transport, decision, options, state)
    return ws


async def _run_session(
    request: web.Request,
    ws: web.WebSocketResponse,
    transport: asyncio.Transport | None,
    decision: Accept,
    options: MockOptions,
    state: MockState,
) -> None:
    record = SessionRecord(
        session_id=None, path=request.path, model=decision.model, dialect=decision.dialect
    )
    if state.record:
        state.sessions.append(record)
    try:
        if decision.fatal is not None:
            await Connection.reject(
                ws, transport, options, record, decision.fatal, decision.close_code
            )
            return
        protocol = RealtimeProtocol(
            model=decision.model,
            dialect=decision.dialect,
            now=time.time(),
            reply_audio_ms=options.reply_audio_ms,
            audio_chunk_ms=options.audio_chunk_ms,
        )
        record.session_id = protocol.session_id
        connection = Connection(ws, transport, options, protocol, record, state.on_event)
        state.connections.add(connection)
        state.update_idle()
        logger.info(
            "simulated session %s open: %s %s (%s)",
            protocol.session_id,
            request.path,
            decision.model,
            decision.dialect,
        )
        try:
            await connection.run()
        finally:
            state.connections.discard(connection)
            state.update_idle()
            logger.info(
                "simulated session %s closed: client %s, server %s",
                protocol.session_id,
                record.close_code,
                record.server_close_code,
            )
    finally:
        record.ended.set()


async def _close_sessions(app: web.Application) -> None:
    """On shutdown, close every session with 1001 rather than let it hang the runner."""
    connections = list(app[STATE].connections)
    await asyncio.gather(*(c.shutdown() for c in connections), return_exceptions=True)
