"""GPT-Live over WebSocket: ``GET /v1/live/sessions``, where the model arrives after the 101.

A Live client names its model in its first frame, ``session.start`` (protocol.md §10),
so admission runs in two parts (DESIGN.md "Live rules"):

1. before the 101, ``Gate.screen`` refuses what it can as HTTP: credentials, origin, a
   ``?model=`` hint's policy and route, the rate, a spent budget;
2. after it, ``session.start`` must arrive within ``timeouts.session_start``; its model is
   admitted (policy, route, concurrency lease, budget), the provider is dialed, and the
   original frame is forwarded byte-for-byte. A refusal now is the Live protocol's own
   ``error`` event, then the table's close code.

From there the session is any other session: ``SessionRun`` with the Live protocol's
taps and meter.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web

from rtrelay.bridge.protocols import LIVE
from rtrelay.bridge.pump import ClientLeg, new_event_id
from rtrelay.edge.handshake import ClientHello, new_request_id, parse_hello
from rtrelay.edge.server import client_watch
from rtrelay.edge.session_run import SessionRun, client_leg
from rtrelay.errors import (
    ClientGone,
    InvalidEvent,
    MalformedRequest,
    MissingModel,
    RelayError,
    RelayShuttingDown,
    SessionStartTimeout,
    UpgradeRequired,
)
from rtrelay.gate.admission import Admission, Ask
from rtrelay.route.router import Connected

if TYPE_CHECKING:
    from rtrelay.edge.relay import Relay

__all__ = ["SessionStart", "handle_live", "read_session_start"]

_START: Final = "session.start"
_ONE_OBJECT: Final = (
    "The first event must be one JSON object, 'session.start', with no repeated keys."
)


class SessionStart:
    """A ``session.start`` frame as the relay reads it: the model and the client's event id,
    or the ``error`` it is refused with (the event id still answers it, when there is one)."""

    __slots__ = ("client_event_id", "error", "model")

    def __init__(
        self, model: str, client_event_id: str | None, error: RelayError | None = None
    ) -> None:
        self.model = model
        self.client_event_id = client_event_id
        self.error = error


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key.lower() for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def read_session_start(frame: bytes) -> SessionStart:
    """Read the first client frame of a Live session, soundly.

    The model admitted must be the model the provider will run, so a frame two JSON
    parsers could read differently is refused: no key may appear twice in any object
    (compared case-insensitively, escapes decoded). The frame is one event, read once,
    so a full parse costs nothing that matters.
    """
    try:
        event = json.loads(frame, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError):
        return SessionStart("", None, InvalidEvent(_ONE_OBJECT))
    if not isinstance(event, dict):
        return SessionStart("", None, InvalidEvent(_ONE_OBJECT))
    event_id = event.get("event_id")
    client_event_id = event_id if isinstance(event_id, str) else None
    if event.get("type") != _START:
        not_start = InvalidEvent("The first event of a GPT-Live session must be 'session.start'.")
        return SessionStart("", client_event_id, not_start)
    session = event.get("session")
    model = session.get("model") if isinstance(session, dict) else None
    if not isinstance(model, str) or not model:
        error = MissingModel("'session.start' must name the model in 'session.model'.")
        return SessionStart("", client_event_id, error)
    return SessionStart(model, client_event_id)


async def handle_live(relay: Relay, request: web.Request) -> web.StreamResponse:
    """``GET /v1/live/sessions``: screen, accept, read ``session.start``, admit, dial, run."""
    arrived = time.monotonic()
    settings = relay.settings
    hello = parse_hello(
        request.headers,
        request.query,
        request_id=new_request_id(),
        handshake_errors=settings.server.handshake_errors,
    )
    http_hello = replace(hello, error_style="http")
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return await relay.refuse(request, http_hello, UpgradeRequired())
    if not ClientLeg().can_prepare(request):
        return await relay.refuse(request, http_hello, MalformedRequest(relay.BAD_UPGRADE))
    route = relay.route_for("live")
    try:
        async with client_watch(request):
            if relay.draining:
                raise RelayShuttingDown(retry_after=1)
            ask = Ask(hello.credential, hello.model, hello.origin, beta=hello.beta)
            await relay.gate.screen(ask, route)
    except Exception as exc:
        error, key = relay.explain(exc, hello)
        return await relay.refuse(request, hello, error, key, exc, live=True)

    client = client_leg(settings, hello)
    client.live_errors = True  # even a first frame over the size limit is told in Live's shape
    await client.prepare(request)
    started = await _session_start(client, settings.timeouts.session_start)
    if isinstance(started, RelayError):
        return await _refuse_after_101(relay, client, hello, started, None)
    frame, start = started
    if start.error is not None:
        return await _refuse_after_101(relay, client, hello, start.error, start)
    hello = replace(hello, model=start.model, error_style="event")
    admission: Admission[Any] | None = None
    try:
        ask = Ask(hello.credential, start.model, hello.origin, beta=hello.beta, rate=False)
        admission = await relay.gate.admit(ask, route)
        connected: Connected = await relay.dial(hello, admission, "live")
        await connected.ws.send_frame(frame, WSMsgType.TEXT)  # the original, byte-for-byte
    except BaseException as exc:
        error, key = await relay.undo(exc, hello, admission)
        return await _refuse_after_101(relay, client, hello, error, start, key, exc)
    run = SessionRun(
        settings,
        relay.parts,
        relay.metrics,
        hello,
        admission,
        connected,
        arrived,
        protocol=LIVE,
        client_leg=client,
        first_frame=len(frame),
    )
    return await run.run(request, relay.register(run))


async def _session_start(
    client: ClientLeg, timeout: float
) -> tuple[bytes, SessionStart] | RelayError:
    """The first client frame, read as ``session.start`` within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            msg = await client.receive()
    except TimeoutError:
        return SessionStartTimeout(
            f"No 'session.start' event arrived within {timeout:g} s of the upgrade: send it "
            "first; it names the model."
        )
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return ClientGone()
    data: bytes = msg.data if isinstance(msg.data, bytes) else str(msg.data).encode()
    return data, read_session_start(data)


async def _refuse_after_101(
    relay: Relay,
    client: ClientLeg,
    hello: ClientHello,
    error: RelayError,
    start: SessionStart | None,
    key: Any = None,
    cause: BaseException | None = None,
) -> web.StreamResponse:
    """Record the refusal; tell the client in the Live ``error`` shape, then close."""
    hello = replace(hello, error_style="event")
    relay.record(hello, error, key, cause)
    if isinstance(error, ClientGone) or client.closed:
        return client
    event = error.to_live_event(new_event_id(), start.client_event_id if start else None)
    try:
        await client.send_json(event, dumps=lambda e: json.dumps(e, separators=(",", ":")))
        await client.close(code=error.close_code, message=error.close_reason().encode())
    except ConnectionError:
        pass
    return client
