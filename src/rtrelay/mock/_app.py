"""The aiohttp application of the simulated provider: endpoints and shared observations."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Final

from aiohttp import web

from rtrelay.mock import _errors as errors
from rtrelay.mock._calls import add_call_routes, attach_sideband
from rtrelay.mock._connection import Connection, websocket_response
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._handshake import (
    CLOSE_FATAL,
    Accept,
    Endpoint,
    Refuse,
    decide,
    offered_subprotocols,
)
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._live import LiveProtocol, UsageTicker, live_error_event
from rtrelay.mock._live_calls import add_live_routes
from rtrelay.mock._live_config import is_live_model
from rtrelay.mock._options import MockOptions
from rtrelay.mock._protocol import RealtimeProtocol, error_event
from rtrelay.mock._records import HandshakeRecord, SessionRecord
from rtrelay.mock._response import Event
from rtrelay.mock._session import SessionProtocol, Ticker
from rtrelay.mock._state import STATE, MockState
from rtrelay.mock._transcription import TranscriptionProtocol
from rtrelay.mock._translation import TranslationProtocol
from rtrelay.wire import CALL_ID_PARAM, LIVE_SESSIONS_PATH, TRANSLATIONS_PATH

__all__ = ["create_app"]

logger = logging.getLogger("rtrelay.mock")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Started = tuple[SessionProtocol, Ticker | None]
SessionFactory = Callable[[Accept, MockOptions], Started]


def create_app(options: MockOptions | None = None, *, record: bool = True) -> web.Application:
    """The simulated provider as an aiohttp application.

    Serves ``GET /v1/realtime?model=M`` (OpenAI), ``GET /openai/realtime?api-version=V&
    deployment=D`` (Azure preview, beta shape), ``GET /openai/v1/realtime?model=D`` (Azure
    GA) and ``GET /healthz``; WebRTC calls: ``POST /v1/realtime/calls`` (the offer),
    ``POST /v1/realtime/calls/{id}/accept|reject|refer|hangup`` and the sideband
    ``GET /v1/realtime?call_id={id}``; transcription sessions
    ``GET /v1/realtime?intent=transcription``; GPT-Live ``GET /v1/live/sessions`` and realtime
    translation ``GET /v1/realtime/translations?model=M`` (protocol.md §10); GPT-Live over
    WebRTC: ``POST /v1/live/sessions``, the sideband ``GET /v1/live/sessions/{id}/attach``,
    ``POST …/{id}/accept|reject|refer|hangup|fork`` and ``GET …/{id}/content``.

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
    app.router.add_get(LIVE_SESSIONS_PATH, _live)
    app.router.add_get(TRANSLATIONS_PATH, _translation)
    app.router.add_get("/healthz", _healthz)
    app.on_shutdown.append(_close_sessions)
    add_call_routes(app)
    add_live_routes(app)
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _realtime_handler(endpoint: Endpoint) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if endpoint is Endpoint.OPENAI and CALL_ID_PARAM in request.query:
            return await attach_sideband(request)
        if endpoint is Endpoint.OPENAI and request.query.get("intent") == "transcription":
            return await _upgrade(request, endpoint, _TRANSCRIPTION)
        return await _upgrade(request, endpoint, _REALTIME)

    return handler


async def _live(request: web.Request) -> web.StreamResponse:
    return await _upgrade(request, Endpoint.OPENAI, _LIVE)


async def _translation(request: web.Request) -> web.StreamResponse:
    return await _upgrade(request, Endpoint.OPENAI, _TRANSLATION)


def _realtime_session(decision: Accept, options: MockOptions) -> Started:
    """A Realtime session, unless the URL names a GPT-Live model (protocol.md §10)."""
    if is_live_model(decision.model):
        raise errors.live_model_on_realtime(decision.model)
    protocol = RealtimeProtocol(
        model=decision.model,
        dialect=decision.dialect,
        now=time.time(),
        reply_audio_ms=options.reply_audio_ms,
        audio_chunk_ms=options.audio_chunk_ms,
    )
    return protocol, None


def _live_session(decision: Accept, options: MockOptions) -> Started:
    """A GPT-Live session: its model arrives later, in ``session.start``."""
    protocol = LiveProtocol(
        now=time.time(),
        reply_audio_ms=options.reply_audio_ms,
        audio_chunk_ms=options.audio_chunk_ms,
        delegate_turns=options.live_delegate_turns,
    )
    ticker = None
    if not options.no_usage_events:
        usage = UsageTicker(protocol, reorder=options.reorder_usage)
        ticker = Ticker(options.live_usage_interval, usage.tick)
    return protocol, ticker


def _transcription_session(decision: Accept, options: MockOptions) -> Started:
    """A transcription session: no model in the URL, the config names a transcriber."""
    return TranscriptionProtocol(now=time.time()), None


def _translation_session(decision: Accept, options: MockOptions) -> Started:
    """A translation session for the ``?model=`` translation model."""
    if "translate" not in decision.model:
        raise errors.invalid_model(
            decision.model,
            f"The model '{decision.model}' is not a realtime translation model; "
            "translation sessions take a model such as 'gpt-realtime-translate'.",
        )
    protocol = TranslationProtocol(
        model=decision.model, now=time.time(), audio_chunk_ms=options.audio_chunk_ms
    )
    return protocol, None


async def _upgrade(request: web.Request, endpoint: Endpoint, kind: _Kind) -> web.StreamResponse:
    """Answer one upgrade request as the provider does, then run a session of ``kind``."""
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
    await _run_session(request, ws, transport, decision, options, state, kind)
    return ws


async def _run_session(
    request: web.Request,
    ws: web.WebSocketResponse,
    transport: asyncio.Transport | None,
    decision: Accept,
    options: MockOptions,
    state: MockState,
    kind: _Kind,
) -> None:
    record = SessionRecord(
        session_id=None,
        path=request.path,
        # A Live model comes in session.start; a transcription session names none.
        model="" if kind in (_LIVE, _TRANSCRIPTION) else decision.model,
        dialect=decision.dialect,
    )
    if state.record:
        state.sessions.append(record)
    try:
        fatal, close_code = decision.fatal, decision.close_code
        started: Started | None = None
        if fatal is None:
            try:
                started = kind.start(decision, options)
            except ProviderError as error:
                fatal, close_code = error, CLOSE_FATAL
        if started is None:
            assert fatal is not None
            event = kind.error_event(fatal, IdFactory())
            await Connection.reject(
                ws, transport, options, record, event, close_code, fatal.close_reason
            )
            return
        protocol, ticker = started
        record.session_id = protocol.session_id
        connection = Connection(ws, transport, options, protocol, record, state.on_event, ticker)
        state.connections.add(connection)
        state.update_idle()
        logger.info(
            "simulated session %s open: %s %s (%s)",
            protocol.session_id,
            request.path,
            record.model or "(model to come in the session config)",
            decision.dialect,
        )
        try:
            await connection.run()
        finally:
            state.connections.discard(connection)
            state.update_idle()
            if isinstance(protocol, LiveProtocol):
                record.model = protocol.model or ""
            elif isinstance(protocol, TranscriptionProtocol):
                record.model = protocol.transcription_model or ""
            logger.info(
                "simulated session %s closed: client %s, server %s",
                protocol.session_id,
                record.close_code,
                record.server_close_code,
            )
    finally:
        record.ended.set()


@dataclass(frozen=True, slots=True)
class _Kind:
    """One WebSocket protocol the provider serves: how a session starts, how errors look.

    ``start`` raises ``ProviderError`` for a session that cannot run (a model the
    endpoint does not serve): the error is sent after the upgrade, then close 3000, as
    for a bad key (protocol.md §3).
    """

    start: SessionFactory
    error_event: Callable[[ProviderError, IdFactory], Event]


_REALTIME: Final = _Kind(_realtime_session, error_event)
_LIVE: Final = _Kind(_live_session, live_error_event)
_TRANSLATION: Final = _Kind(_translation_session, error_event)
_TRANSCRIPTION: Final = _Kind(_transcription_session, error_event)


async def _close_sessions(app: web.Application) -> None:
    """On shutdown, close every session with 1001 rather than let it hang the runner."""
    connections = list(app[STATE].connections)
    await asyncio.gather(*(c.shutdown() for c in connections), return_exceptions=True)
