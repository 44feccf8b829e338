"""WebRTC calls over HTTP: the offer, the call controls and the sidebands (protocol.md §10).

``POST /v1/realtime/calls`` takes a raw ``application/sdp`` offer (``?model=``) or
multipart ``sdp`` + ``session`` (the GA session config, model inside) and answers 201
with the SDP answer and ``Location: /v1/realtime/calls/{call_id}``. ``POST …/{call_id}/
accept|reject|refer|hangup`` controls a call; ``GET /v1/realtime?call_id=…`` attaches a
sideband WebSocket to it. What to answer is decided first (``parse_offer``,
``decide_http``), then the I/O is done; the peer itself lives in ``_rtc`` (imported on
the first call: aiortc is heavy).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import WSMsgType, web

from rtrelay.mock import _errors as errors
from rtrelay.mock._connection import CLOSE_TIMEOUT, websocket_response
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._handshake import (
    Accept,
    Endpoint,
    Refuse,
    decide,
    decide_http,
    offered_subprotocols,
    refusal_body,
)
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._live_config import is_live_model
from rtrelay.mock._options import MockOptions
from rtrelay.mock._protocol import RealtimeProtocol
from rtrelay.mock._records import CallRecord
from rtrelay.mock._response import Event
from rtrelay.mock._sideband import Sideband
from rtrelay.mock._state import STATE, MockState
from rtrelay.tasks import cancel_and_wait

if TYPE_CHECKING:
    from rtrelay.mock._rtc import Call
from rtrelay.wire import CALL_CONTROLS, CALL_ID_PARAM, CALLS_PATH, DEFAULT_MODEL

__all__ = [
    "Offer",
    "add_call_routes",
    "attach_sideband",
    "bad_request",
    "controlled_call",
    "forget_call",
    "parse_offer",
    "refusal_response",
    "refused",
    "serve_sideband",
]

logger = logging.getLogger("rtrelay.mock")

# The source of a control request's client event: its errors answer the request instead.
_CONTROL_REQUEST: Final = object()

# A browser's offer is a few KB; this bounds what is parsed before anything is decided.
MAX_OFFER_BYTES: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class Offer:
    """A call request, parsed: the SDP offer, the model, the session config to apply."""

    sdp: str
    model: str
    session: dict[str, Any] | None


def parse_offer(content_type: str, fields: Mapping[str, str], query: Mapping[str, str]) -> Offer:
    """What a ``POST /v1/realtime/calls`` asks for.

    Args:
        content_type: ``application/sdp`` (the body is ``fields["sdp"]``) or
            ``multipart/form-data`` (parts ``sdp`` and optionally ``session``).
        fields: the body's fields, as text.
        query: the query string (``model`` for a raw offer).

    Raises:
        ProviderError: a 400 to answer (missing offer, bad session JSON, wrong type).
    """
    if content_type not in ("application/sdp", "multipart/form-data"):
        raise ProviderError(
            "unsupported_content_type",
            "Send the SDP offer as application/sdp, or multipart/form-data with 'sdp' and "
            "'session' parts.",
        )
    sdp = fields.get("sdp", "")
    if not sdp.strip():
        raise errors.missing_parameter("sdp")
    if not sdp.lstrip().startswith("v=0"):
        raise errors.invalid_offer("The SDP offer must start with 'v=0'.")
    if not any(line.startswith(("m=audio", "m=application")) for line in sdp.splitlines()):
        raise errors.invalid_offer("The SDP offer has neither an audio nor a data channel section.")
    session: dict[str, Any] | None = None
    if "session" in fields:
        try:
            parsed = orjson.loads(fields["session"])
        except orjson.JSONDecodeError:
            raise errors.invalid_value("session", "The session part is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise errors.invalid_type("session", "an object", parsed)
        session = parsed
    model = query.get("model") or DEFAULT_MODEL
    if session is not None and "model" in session:
        if not isinstance(session["model"], str) or not session["model"]:
            raise errors.invalid_type("session.model", "a string", session["model"])
        model = session["model"]
    if is_live_model(model):
        raise errors.live_model_on_realtime(model)
    return Offer(sdp, model, session)


def add_call_routes(app: web.Application) -> None:
    """Serve the offer and the call controls (the sideband shares ``GET /v1/realtime``)."""
    app.router.add_post(CALLS_PATH, _create_call)
    app.router.add_post(CALLS_PATH + "/{call_id}/{control}", _control_call)
    app.on_shutdown.append(_end_calls)


def refusal_response(refuse: Refuse) -> web.Response:
    return web.Response(
        status=refuse.status,
        text=refuse.body,
        content_type="application/json",
        headers={"x-request-id": IdFactory().new("req")},
    )


async def refused(
    request: web.Request, options: MockOptions, *, stall: bool = False
) -> web.Response | None:
    """The HTTP faults a WebRTC request meets first, as for a WebSocket handshake: the
    ``stall_handshake`` delay (offers only, with ``stall``), then a refusal (``None``: go on)."""
    if stall and options.stall_handshake:
        await asyncio.sleep(options.stall_handshake)
    refuse = decide_http(request.headers, options)
    return None if refuse is None else refusal_response(refuse)


def bad_request(error: ProviderError, status: int = 400) -> web.Response:
    return refusal_response(Refuse(status, error.http_body()))


async def _read_fields(request: web.Request) -> dict[str, str]:
    """The offer's body as text fields: the raw SDP, or the multipart parts."""
    if request.content_type != "multipart/form-data":
        if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_OFFER_BYTES, request.content_length)
        return {"sdp": await request.text()}
    fields: dict[str, str] = {}
    for name, value in (await request.post()).items():
        if isinstance(value, web.FileField):  # a browser's FormData Blob has a filename
            fields[name] = value.file.read(MAX_OFFER_BYTES).decode("utf-8", "replace")
        elif isinstance(value, str):
            fields[name] = value
        else:
            fields[name] = bytes(value).decode("utf-8", "replace")
    return fields


async def _create_call(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    options = state.options  # one snapshot per call
    if (refusal := await refused(request, options, stall=True)) is not None:
        return refusal
    try:
        offer = parse_offer(request.content_type, await _read_fields(request), request.query)
    except ProviderError as error:
        return bad_request(error)
    except ValueError as exc:  # a malformed multipart body
        return bad_request(errors.invalid_value("body", f"Malformed request body: {exc}"))

    protocol = RealtimeProtocol(
        model=offer.model,
        dialect="ga",  # WebRTC calls are GA only (the beta shape is retired, protocol.md §1)
        now=time.time(),
        reply_audio_ms=options.reply_audio_ms,
        audio_chunk_ms=options.audio_chunk_ms,
        transport="webrtc",
    )
    if offer.session is not None:
        # The multipart session applies as a session.update would, before session.created.
        rejected = _rejected(protocol.receive_text(_session_update(offer.session)).replies)
        if rejected is not None:
            return rejected

    from rtrelay.mock._rtc import Call

    call_id = IdFactory().new("rtc")
    record = CallRecord(call_id=call_id, session_id=protocol.session_id, model=offer.model)
    call = Call(
        call_id=call_id,
        protocol=protocol,
        options=options,
        record=record,
        on_event=state.on_event,
        on_end=lambda ended: forget_call(state, ended.id),
    )
    try:
        answer = await call.answer(offer.sdp)
    except ValueError as exc:
        return bad_request(errors.invalid_offer(str(exc)))
    if state.record:
        state.call_records.append(record)
    state.calls[call_id] = call
    state.update_idle()
    logger.info("simulated call %s open: %s", call_id, offer.model)
    return web.Response(
        status=201,
        text=answer,
        content_type="application/sdp",
        headers={"Location": f"{CALLS_PATH}/{call_id}"},
    )


def _session_update(session: Any) -> bytes:
    return orjson.dumps({"type": "session.update", "session": session})


def _rejected(replies: list[Event]) -> web.Response | None:
    """A 400 carrying the protocol's error, if applying a session config produced one."""
    for reply in replies:
        if reply["type"] == "error":
            error = reply["error"]
            return bad_request(ProviderError(error["code"], error["message"], param=error["param"]))
    return None


def forget_call(state: MockState, call_id: str) -> None:
    state.calls.pop(call_id, None)
    state.update_idle()


async def controlled_call(
    request: web.Request,
    controls: tuple[str, ...],
    call_id: str,
    kind: type[Any],
    not_found: Callable[[str], ProviderError],
) -> tuple[Call, Any] | web.Response:
    """The live call a control request (``POST …/{id}/<control>``) names, and its JSON
    body (``None`` if empty); or the response refusing the request."""
    state = request.app[STATE]
    if request.match_info["control"] not in controls:
        raise web.HTTPNotFound()
    if (refusal := await refused(request, state.options)) is not None:
        return refusal
    call = state.calls.get(call_id)
    if call is None or call.ended or not isinstance(call.protocol, kind):
        return bad_request(not_found(call_id), 404)
    body: Any = None
    if request.can_read_body:
        if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_OFFER_BYTES, request.content_length)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return bad_request(errors.invalid_value("body", "The body is not valid JSON."))
    return call, body


async def _control_call(request: web.Request) -> web.StreamResponse:
    call_id = request.match_info["call_id"]
    control = request.match_info["control"]
    found = await controlled_call(
        request, CALL_CONTROLS, call_id, RealtimeProtocol, errors.call_not_found
    )
    if isinstance(found, web.Response):
        return found
    call, body = found
    call.record.controls.append(control)
    if control == "refer":
        target = body.get("target_uri") if isinstance(body, dict) else None
        if not isinstance(target, str) or not target:
            return bad_request(errors.missing_parameter("target_uri"))
    elif control == "accept" and body is not None:
        # Accepting configures the session (SIP); for a WebRTC call it updates it. An
        # invalid config is this request's 400, not an error event on the call.
        rejected = _rejected(call.receive_text(_session_update(body), _CONTROL_REQUEST))
        if rejected is not None:
            return rejected
    elif control in ("hangup", "reject"):
        await call.end(control)
    return web.Response(status=200)


async def attach_sideband(request: web.Request) -> web.StreamResponse:
    """``GET /v1/realtime?call_id=…``: a server's WebSocket joins a live call.

    Authenticated as any WebSocket session (a bad key: ``invalid_api_key`` and close 3000
    after the upgrade); an unknown call id is refused with 404 before it. No
    ``session.created`` is sent: the sideband sees the call's events from now on and
    its client events act on the call's session (protocol.md §10).
    """
    call_id = request.query.get(CALL_ID_PARAM, "")
    return await serve_sideband(request, call_id, RealtimeProtocol, errors.call_not_found)


async def serve_sideband(
    request: web.Request,
    call_id: str,
    kind: type[Any],
    not_found: Callable[[str], ProviderError],
) -> web.StreamResponse:
    """Attach a sideband WebSocket to the call ``call_id`` whose protocol is a ``kind``;
    ``not_found`` is the 404 for an unknown id (or a call of another protocol)."""
    state = request.app[STATE]
    options = state.options
    subprotocols = offered_subprotocols(request.headers.getall("Sec-WebSocket-Protocol", []))
    if options.stall_handshake:
        await asyncio.sleep(options.stall_handshake)
    decision = decide(Endpoint.OPENAI, request.query, request.headers, subprotocols, options)
    if isinstance(decision, Refuse):
        return refusal_response(decision)
    if options.refuse_sideband_status is not None:
        status = options.refuse_sideband_status
        return refusal_response(Refuse(status, refusal_body(status)))
    call = state.calls.get(call_id)
    if call is None or call.ended or not isinstance(call.protocol, kind):
        return bad_request(not_found(call_id), 404)
    ws = websocket_response()
    await ws.prepare(request)
    sideband = Sideband(ws, request.transport)
    if isinstance(decision, Accept) and decision.fatal is not None:
        error = call.protocol.error(decision.fatal)
        sideband.deliver(orjson.dumps(error))
        sideband.close(decision.close_code, decision.fatal.close_reason)
        await sideband.write()
        return ws
    writer = asyncio.create_task(sideband.write(), name="rtrelay.mock.sideband")
    call.attach(sideband)
    logger.info("simulated call %s: sideband attached", call.id)
    try:
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.TEXT:
                call.receive_text(message.data, sideband)
            elif message.type is WSMsgType.BINARY:
                call.receive_binary(sideband)
            else:
                break
    finally:
        call.detach(sideband)
        if sideband.closed:
            # The call closed it: let the writer finish the close handshake.
            await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
        await cancel_and_wait(writer)
    return ws


async def _end_calls(app: web.Application) -> None:
    """On shutdown, end every call (its sidebands get 1001) rather than hang the runner."""
    calls = list(app[STATE].calls.values())
    await asyncio.gather(*(call.end("shutdown") for call in calls), return_exceptions=True)
