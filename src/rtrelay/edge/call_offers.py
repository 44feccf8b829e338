"""Reading a WebRTC setup request: the SDP offer in every shape a client sends it.

``POST /v1/realtime/calls`` takes a raw ``application/sdp`` offer with ``?model=`` or
multipart ``sdp`` + ``session`` (JSON); ``POST /v1/live/sessions`` takes JSON
``{session, transport: {sdp}}``; a Live ``fork`` takes the parent's model. Every body is
bounded (``MAX_OFFER_BYTES``) and every malformed field is an ``invalid_value`` naming
it, before anything is admitted or dialed (protocol.md §10).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import BodyPartReader, web

from rtrelay.errors import InvalidRequest
from rtrelay.ledger.records import CallRecord
from rtrelay.route.calls import LIVE_SESSIONS, CallOffer

__all__ = ["MAX_OFFER_BYTES", "read_bounded", "read_fork", "read_live_offer", "read_offer"]

MAX_OFFER_BYTES: Final = 64 * 1024
"""A browser's offer is 3-10 KB; the whole body (multipart parts included) is bounded."""


async def read_offer(request: web.Request, limit: int = MAX_OFFER_BYTES) -> CallOffer:
    """The call a request asks for; the body is read up to ``limit`` bytes.

    Raises:
        InvalidRequest: wrong content type, over the limit, no SDP, bad session JSON.
    """
    if request.content_length is not None and request.content_length > limit:
        raise InvalidRequest(f"The request body is over {limit // 1024} KB.", param="sdp")
    session: dict[str, Any] | None = None
    if request.content_type == "multipart/form-data":
        fields = await _multipart(request, limit)
        sdp = fields.get("sdp", "")
        if "session" in fields:
            try:
                parsed = orjson.loads(fields["session"])
            except orjson.JSONDecodeError:
                raise InvalidRequest(
                    "The session part is not valid JSON.", param="session"
                ) from None
            if not isinstance(parsed, dict):
                raise InvalidRequest("The session part must be a JSON object.", param="session")
            session = parsed
    elif request.content_type == "application/sdp":
        sdp = (await read_bounded(request, limit)).decode("utf-8", "replace")
    else:
        raise InvalidRequest(
            "Send the SDP offer as application/sdp (with ?model=), or multipart/form-data "
            "with 'sdp' and 'session' parts.",
            param="Content-Type",
        )
    if not sdp.strip():
        raise InvalidRequest("The request has no SDP offer.", param="sdp")
    model = request.query.get("model") or None
    if session is not None and "model" in session:
        if not isinstance(session["model"], str) or not session["model"]:
            raise InvalidRequest("session.model must be a non-empty string.", param="session.model")
        model = session["model"]
    # No model: ``Gate.admit`` says so, after the credential (the WebSocket path's order).
    return CallOffer(sdp=sdp, model=model or "", session=session)


async def read_live_offer(request: web.Request, limit: int = MAX_OFFER_BYTES) -> CallOffer:
    """A Live session request (``openai/types/live/live_create_params.py``): JSON
    ``{session: {model, …}, transport: {type: "webrtc", sdp}}``, read up to ``limit``.

    Raises:
        InvalidRequest: not a JSON object, no ``session`` object, no SDP, a bad model.
    """
    body = await _json_body(request, limit)
    session = body.get("session")
    if not isinstance(session, dict):
        raise InvalidRequest("The body must have a 'session' object.", param="session")
    model = session.get("model", "")
    if not isinstance(model, str):
        raise InvalidRequest("session.model must be a string.", param="session.model")
    # No model: ``Gate.admit`` says so, after the credential (the WebSocket path's order).
    return CallOffer(
        sdp=_transport_sdp(body), model=model, session=session, route=LIVE_SESSIONS, body=body
    )


async def read_fork(request: web.Request, parent: CallRecord) -> CallOffer:
    """A fork of Live session ``parent`` (``openai/types/live/session_fork_params.py``):
    JSON ``{transport: {sdp}, session?}``; the fork runs on the parent's model.

    Raises:
        InvalidRequest: not a JSON object, or no SDP.
    """
    body = await _json_body(request, MAX_OFFER_BYTES)
    session = body.get("session")
    return CallOffer(
        sdp=_transport_sdp(body),
        model=parent.model,
        session=session if isinstance(session, dict) else None,
        route=LIVE_SESSIONS,
        body=body,
        fork_of=parent.provider_call_id,
    )


async def _json_body(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise InvalidRequest("Send the request as application/json.", param="Content-Type")
    if request.content_length is not None and request.content_length > limit:
        raise InvalidRequest(f"The request body is over {limit // 1024} KB.", param="body")
    try:
        body = orjson.loads(await read_bounded(request, limit))
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body is not valid JSON.", param="body") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", param="body")
    return body


def _transport_sdp(body: dict[str, Any]) -> str:
    transport = body.get("transport")
    if not isinstance(transport, dict):
        raise InvalidRequest("The body must have a 'transport' object.", param="transport")
    if transport.get("type", "webrtc") != "webrtc":
        raise InvalidRequest("transport.type must be 'webrtc'.", param="transport.type")
    sdp = transport.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidRequest("The request has no SDP offer.", param="transport.sdp")
    return sdp


async def read_bounded(request: web.Request, limit: int) -> bytes:
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise InvalidRequest(f"The request body is over {limit // 1024} KB.", param="sdp")
    return body


async def _multipart(request: web.Request, limit: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    total = 0
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            data = bytearray()
            while chunk := await part.read_chunk(8192):
                total += len(chunk)
                if total > limit:
                    raise InvalidRequest(
                        f"The request body is over {limit // 1024} KB.", param="sdp"
                    )
                data += chunk
            fields[part.name] = data.decode("utf-8", "replace")
    except (ValueError, AssertionError) as exc:  # aiohttp's multipart parser on garbage
        raise InvalidRequest(f"Malformed multipart body: {exc}", param="body") from exc
    return fields
