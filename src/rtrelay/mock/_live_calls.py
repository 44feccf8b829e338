"""GPT-Live over WebRTC: session creation, controls, the sideband and the recording.

``POST /v1/live/sessions`` takes JSON ``{"session": {...}, "transport": {"type": "webrtc",
"sdp": offer}}`` (the SDK's ``live_create_params.py``) and answers ``{"session": {"id"},
"transport": {"type": "webrtc", "sdp": answer}}`` (``live_create_response.py``): an aiortc
peer (``_rtc.Call``) runs ``LiveProtocol``, already started, ``session.started`` first on
its data channel. The session id names the session everywhere else:
``GET …/{id}/attach`` (a server's sideband WebSocket), ``POST …/{id}/accept|reject|refer|
hangup|fork`` and ``GET …/{id}/content`` (the recording, for ``store: true`` sessions, a
WAV of the audio the session spoke). Faults as for Realtime calls (``MockOptions``).
"""

from __future__ import annotations

import io
import logging
import time
import wave
from collections.abc import Callable
from typing import Any, Final

import orjson
from aiohttp import web

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import PCM16_RATE, reply_audio
from rtrelay.mock._calls import (
    MAX_OFFER_BYTES,
    bad_request,
    controlled_call,
    forget_call,
    refused,
    serve_sideband,
)
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._live import LiveProtocol, UsageTicker
from rtrelay.mock._live_config import LiveConfig, strict_object, string_value
from rtrelay.mock._records import CallRecord
from rtrelay.mock._session import Ticker
from rtrelay.mock._state import STATE, MockState
from rtrelay.wire import LIVE_ATTACH_SUFFIX, LIVE_SESSIONS_PATH

__all__ = ["LIVE_CONTROLS", "add_live_routes"]

logger = logging.getLogger("rtrelay.mock")

LIVE_CONTROLS: Final = ("accept", "reject", "refer", "hangup", "fork")
# The recording is the audio the session spoke, up to this much (a small WAV suffices).
MAX_RECORDING_MS: Final = 60_000
# Ended stored sessions whose recording can still be downloaded, oldest dropped first.
MAX_RECORDINGS: Final = 1000
_RECORDINGS: Final = web.AppKey("rtrelay_mock_live_recordings", dict[str, float])


def add_live_routes(app: web.Application) -> None:
    """Serve Live WebRTC creation, controls, sidebands and recordings."""
    app[_RECORDINGS] = {}
    app.router.add_post(LIVE_SESSIONS_PATH, _create)
    app.router.add_get(LIVE_SESSIONS_PATH + "/{session_id}" + LIVE_ATTACH_SUFFIX, _attach)
    app.router.add_get(LIVE_SESSIONS_PATH + "/{session_id}/content", _content)
    app.router.add_post(LIVE_SESSIONS_PATH + "/{session_id}/{control}", _control)


async def _create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    options = state.options  # one snapshot per session
    if (refusal := await refused(request, options, stall=True)) is not None:
        return refusal
    protocol = _protocol(state)
    try:
        body = await _json_body(request)
        obj = strict_object(body, "body", frozenset({"session", "transport"}))
        if "session" not in obj:
            raise errors.missing_parameter("session")
        sdp = _offer(obj.get("transport"))
        protocol.start(obj["session"])
    except ProviderError as error:
        return bad_request(error)
    return await _answer(request, state, protocol, sdp)


async def _fork(request: web.Request, parent: LiveConfig, body: Any) -> web.StreamResponse:
    """A stored session continued on a new WebRTC connection, with a new session id."""
    state = request.app[STATE]
    protocol = _protocol(state)
    try:
        obj = strict_object(body, "body", frozenset({"session", "transport"}))
        sdp = _offer(obj.get("transport"))
        protocol.fork(parent, obj.get("session"))
    except ProviderError as error:
        return bad_request(error)
    return await _answer(request, state, protocol, sdp)


def _protocol(state: MockState) -> LiveProtocol:
    options = state.options
    return LiveProtocol(
        now=time.time(),
        reply_audio_ms=options.reply_audio_ms,
        audio_chunk_ms=options.audio_chunk_ms,
        transport="webrtc",
        delegate_turns=options.live_delegate_turns,
        reflect_audio=options.live_reflect_audio,
    )


async def _answer(
    request: web.Request, state: MockState, protocol: LiveProtocol, sdp: str
) -> web.StreamResponse:
    from rtrelay.mock._rtc import Call

    options = state.options
    assert protocol.config is not None
    session_id = protocol.session_id
    record = CallRecord(call_id=session_id, session_id=session_id, model=protocol.config.model)
    ticker = None
    if not options.no_usage_events:
        usage = UsageTicker(protocol, reorder=options.reorder_usage)
        ticker = Ticker(options.live_usage_interval, usage.tick)
    recordings = request.app[_RECORDINGS]
    call = Call(
        call_id=session_id,
        protocol=protocol,
        options=options,
        record=record,
        on_event=state.on_event,
        on_end=lambda ended: _ended(state, recordings, protocol, ended.id),
        ticker=ticker,
    )
    try:
        answer = await call.answer(sdp)
    except ValueError as exc:
        return bad_request(errors.invalid_offer(str(exc)))
    if state.record:
        state.call_records.append(record)
    state.calls[session_id] = call
    state.update_idle()
    logger.info("simulated Live session %s open over WebRTC", session_id)
    return web.json_response(
        {"session": {"id": session_id}, "transport": {"type": "webrtc", "sdp": answer}}
    )


def _ended(
    state: MockState, recordings: dict[str, float], protocol: LiveProtocol, session_id: str
) -> None:
    forget_call(state, session_id)
    if protocol.config is not None and protocol.config.store:
        recordings[session_id] = protocol.spoken_ms
        while len(recordings) > MAX_RECORDINGS:
            del recordings[next(iter(recordings))]


async def _json_body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_OFFER_BYTES, request.content_length)
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise errors.invalid_value("body", "The body is not valid JSON.") from None


def _offer(transport: Any) -> str:
    """The SDP offer of a ``transport`` object (``{"type": "webrtc", "sdp": …}``)."""
    if transport is None:
        raise errors.missing_parameter("transport")
    obj = strict_object(transport, "transport", frozenset({"type", "sdp"}))
    if obj.get("type") != "webrtc":
        raise errors.invalid_value("transport.type", "The transport type must be 'webrtc'.")
    if "sdp" not in obj:
        raise errors.missing_parameter("transport.sdp")
    sdp = string_value(obj["sdp"], "transport.sdp")
    if not sdp.lstrip().startswith("v=0"):
        raise errors.invalid_offer("The SDP offer must start with 'v=0'.")
    return sdp


async def _attach(request: web.Request) -> web.StreamResponse:
    """``GET /v1/live/sessions/{id}/attach``: a server's sideband joins the session; it sees
    its events from now on (no ``session.started``) and may send client events."""
    session_id = request.match_info["session_id"]
    return await serve_sideband(request, session_id, LiveProtocol, errors.live_session_not_found)


async def _control(request: web.Request) -> web.StreamResponse:
    session_id = request.match_info["session_id"]
    control = request.match_info["control"]
    found = await controlled_call(
        request, LIVE_CONTROLS, session_id, LiveProtocol, errors.live_session_not_found
    )
    if isinstance(found, web.Response):
        return found
    call, body = found
    protocol = call.protocol
    assert isinstance(protocol, LiveProtocol)
    assert protocol.config is not None  # a WebRTC session starts with its creation
    check = _CHECKS.get(control)
    try:
        if check is not None:
            check(body)
    except ProviderError as error:
        return bad_request(error)
    call.record.controls.append(control)
    if control == "fork":
        if not protocol.config.store:
            return bad_request(_not_stored(session_id))
        return await _fork(request, protocol.config, body)
    if control in ("hangup", "reject"):
        await call.end(control)
    return web.Response(status=200)


def _check_accept(body: Any) -> None:
    # session_accept_params.py: the session config is required (SIP); a WebRTC session
    # is already started, so it is checked and otherwise ignored.
    obj = strict_object(body if body is not None else {}, "body", frozenset({"session"}))
    if "session" not in obj:
        raise errors.missing_parameter("session")


def _check_reject(body: Any) -> None:
    obj = strict_object(body if body is not None else {}, "body", frozenset({"status_code"}))
    code = obj.get("status_code")
    if code is None:
        raise errors.missing_parameter("status_code")
    if isinstance(code, bool) or not isinstance(code, int):
        raise errors.invalid_type("status_code", "an integer", code)


def _check_refer(body: Any) -> None:
    obj = strict_object(body if body is not None else {}, "body", frozenset({"target_uri"}))
    target = obj.get("target_uri")
    if target is None:
        raise errors.missing_parameter("target_uri")
    string_value(target, "target_uri")


_CHECKS: Final[dict[str, Callable[[Any], None]]] = {
    "accept": _check_accept,
    "reject": _check_reject,
    "refer": _check_refer,
}


async def _content(request: web.Request) -> web.StreamResponse:
    """The recording of a stored session, live or ended: a WAV (pcm16, 24 kHz, mono)."""
    state = request.app[STATE]
    if (refusal := await refused(request, state.options)) is not None:
        return refusal
    session_id = request.match_info["session_id"]
    call = state.calls.get(session_id)
    spoken = request.app[_RECORDINGS].get(session_id)
    if call is not None and isinstance(call.protocol, LiveProtocol):
        config = call.protocol.config
        if config is None or not config.store:
            return bad_request(_not_stored(session_id))
        spoken = call.protocol.spoken_ms
    if spoken is None:
        return bad_request(errors.live_session_not_found(session_id), 404)
    return web.Response(body=_wav(spoken), content_type="audio/wav")


def _wav(spoken_ms: float) -> bytes:
    duration = min(MAX_RECORDING_MS, round(spoken_ms))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(PCM16_RATE)
        wav.writeframes(reply_audio(duration, "audio/pcm") if duration > 0 else b"")
    return out.getvalue()


def _not_stored(session_id: str) -> ProviderError:
    return ProviderError(
        "session_not_stored",
        f"Live session '{session_id}' was not stored: start it with store: true to fork it "
        "or download its recording.",
        param="session_id",
    )
