"""``POST /v1/realtime/calls``: WebRTC call setup through the relay (protocol.md §10).

The same pipeline as a WebSocket upgrade, with an SDP offer instead of an upgrade:
read the offer (raw ``application/sdp`` + ``?model=``, or multipart ``sdp`` +
``session``, bounded) → ``Gate.admit`` (credential, origin, model, lease, rate,
budget; an ``ek_`` token's bound model applies) → offer the SDP to the admitted
channels with failover (``CallDialer.offer``) → attach the relay's own metering
sideband (``CallRun.attach``: if it cannot be attached the call is hung up and
refused) → register the call → answer 201 with the provider's SDP and
``Location: /v1/realtime/calls/<relay id>``. The provider's call id never reaches the
client. Refusals are the error table's HTTP answers (``http_refusal``), recorded
like any refused handshake (``record_refusal``).

Browsers call this cross-origin, so the preflight is answered and the answers carry
CORS headers for allowed origins (``server.allowed_origins``, any origin when it is
empty); the POST itself is still judged by ``Gate.check_origin`` (a key's own list too).

GPT-Live over WebRTC (``POST /v1/live/sessions``, JSON ``{session, transport: {sdp}}``)
takes the same path with its own ``CallRoute``: admitted for ``session.model`` as a Live
model, answered with the provider's JSON with its session id replaced by a relay id
(``rlive_…``), metered by a ``CallRun`` on the Live protocol, controlled under
``/v1/live/sessions/{id}/`` (``fork`` is a new session, admitted and metered like one;
``GET …/content`` streams the recording).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from rtrelay.config import Channel
from rtrelay.edge.call_offers import (
    MAX_OFFER_BYTES,
    read_bounded,
    read_fork,
    read_live_offer,
    read_offer,
)
from rtrelay.edge.call_run import CallRun
from rtrelay.edge.handshake import ClientHello, new_request_id, parse_hello
from rtrelay.edge.refuse import http_refusal
from rtrelay.edge.relay import Relay
from rtrelay.errors import (
    CallNotFound,
    ModelNotFound,
    RelayError,
    RelayShuttingDown,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from rtrelay.gate.admission import Admission, Ask
from rtrelay.ledger.records import CallRecord
from rtrelay.log import edge_log
from rtrelay.route.calls import (
    CALL_KINDS,
    LIVE_SESSIONS,
    REALTIME_CALLS,
    CallDialer,
    CallOffer,
    CallRoute,
    call_route,
)
from rtrelay.route.dial import MAX_REFUSAL_BODY, DialFailure, FailureKind
from rtrelay.tasks import cancel_and_wait
from rtrelay.wire import LIVE_CONTENT_SUFFIX

__all__ = ["CallDesk", "new_call_id"]

_CORS_METHODS: Final = "GET, POST, OPTIONS"
_CORS_HEADERS: Final = "Authorization, Content-Type, OpenAI-Beta"
_CORS_EXPOSE: Final = "Location, X-Request-Id"
_ID_PREFIX: Final = {"realtime": "rcall_", "live": "rlive_"}


def new_call_id(route: CallRoute = REALTIME_CALLS) -> str:
    return _ID_PREFIX[route.family] + secrets.token_hex(12)


class CallDesk:
    """Sets calls up and owns the live ones (``CallRun``), one process's share of them."""

    def __init__(self, relay: Relay, dialer: CallDialer) -> None:
        self.relay = relay
        self.dialer = dialer
        self.calls: dict[str, CallRun] = {}

    # -- HTTP ---------------------------------------------------------------------------------
    async def preflight(self, request: web.Request) -> web.Response:
        """The CORS preflight: allowed origins get the methods and headers, others nothing."""
        headers = self.cors(request.headers.get("Origin"))
        if headers:
            headers["Access-Control-Allow-Methods"] = _CORS_METHODS
            headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
            headers["Access-Control-Max-Age"] = "600"
        return web.Response(status=204, headers=headers)

    def cors(self, origin: str | None) -> dict[str, str]:
        """CORS headers for ``origin`` (none if it is not allowed: the browser then blocks)."""
        allowed = self.relay.settings.server.allowed_origins
        if origin is None or (allowed and origin not in allowed):
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": _CORS_EXPOSE,
            "Vary": "Origin",
        }

    async def create(self, request: web.Request, route: CallRoute = REALTIME_CALLS) -> web.Response:
        """``POST /v1/realtime/calls`` or ``/v1/live/sessions``: admit, offer, attach the
        sideband, answer with the provider's answer and the relay's id."""
        arrived = time.monotonic()
        hello = parse_hello(
            request.headers, request.query, request_id=new_request_id(), handshake_errors="http"
        )
        read = read_live_offer if route.family == "live" else read_offer
        return await self._open(hello, arrived, lambda: read(request))

    async def _open(
        self,
        hello: ClientHello,
        arrived: float,
        read: Callable[[], Awaitable[CallOffer]],
        only: Channel | None = None,
    ) -> web.Response:
        """Admit the offer ``read`` returns, dial it (on ``only``: a fork's channel), run it."""
        relay = self.relay
        cors = self.cors(hello.origin)
        admission: Admission[Any] | None = None
        run: CallRun | None = None
        try:
            if relay.draining:
                raise RelayShuttingDown(retry_after=1)
            offer = await read()
            hello = replace(hello, model=offer.model or None)
            ask = Ask(hello.credential, hello.model, hello.origin)
            admission = await relay.gate.admit(ask, relay.route_for(offer.route.family))
            t = relay.settings.timeouts
            answered = await self.dialer.offer(
                offer,
                [only] if only else _call_channels(admission.plan or [], offer.model),
                request_id=hello.request_id,
                dial_timeout=t.dial,
                deadline=t.handshake_deadline,
            )
            relay.observe_attempts(answered.attempts)
            run = CallRun(
                relay.settings,
                relay.parts,
                relay.metrics,
                self.dialer,
                hello,
                admission,
                answered,
                new_call_id(offer.route),
                arrived,
                route=offer.route,
            )
            await run.attach()
        except BaseException as exc:
            error, key = await relay.undo(exc, hello, admission)
            relay.record(hello, error, key, exc)
            response = http_refusal(error, hello.request_id)
            response.headers.update(cors)
            return response
        await self._register(run)
        self.calls[run.call_id] = run
        run.start(self._forget)
        return _answer(run, hello.request_id, cors)

    async def control(
        self, request: web.Request, route: CallRoute = REALTIME_CALLS
    ) -> web.Response:
        """``POST {route}/{id}/accept|reject|refer|hangup`` (and a Live session's ``fork``),
        for the call's owner.

        The caller is authenticated and its Origin checked as for any request, but no
        session is admitted (a spent budget must not keep anyone from hanging up). A call
        id that is unknown, another key's or another protocol's is ``call_not_found``; the
        provider's answer is passed back with its status, its own call id replaced by the
        relay's. A fork starts a new session, so it is admitted, dialed on the parent's
        channel and metered like one (``_open``).
        """
        arrived = time.monotonic()
        relay = self.relay
        request_id = new_request_id()
        hello = parse_hello(
            request.headers, request.query, request_id=request_id, handshake_errors="http"
        )
        cors = self.cors(hello.origin)
        call_id, control = request.match_info["call_id"], request.match_info["control"]
        try:
            if control not in route.controls:
                raise CallNotFound(f"Unknown call control '{control}'.", param="control")
            call, channel = await self._owned(hello, call_id, route)
            if control == "fork":
                forked = await self._open(hello, arrived, lambda: read_fork(request, call), channel)
                if isinstance(forked.body, bytes):  # a refusal may quote the parent's id
                    forked.body = _masked(forked.body, call, call_id)
                return forked
            body = await read_bounded(request, MAX_OFFER_BYTES)
            status, answer, content_type = await self.dialer.control(
                channel,
                call.provider_call_id,
                control,
                body=body,
                content_type=request.headers.get("Content-Type"),
                request_id=request_id,
                timeout=relay.settings.timeouts.dial,
                route=route,
            )
        except (RelayError, DialFailure) as exc:
            return _control_refusal(exc, request_id, cors)
        return web.Response(
            status=status,
            body=_masked(answer, call, call_id),
            headers={"X-Request-Id": request_id, "Content-Type": content_type, **cors},
        )

    async def content(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/live/sessions/{id}/content``: the session's recording, streamed from
        the provider for the session's owner (``control``'s rules)."""
        request_id = new_request_id()
        hello = parse_hello(
            request.headers, request.query, request_id=request_id, handshake_errors="http"
        )
        cors = self.cors(hello.origin)
        try:
            call, channel = await self._owned(hello, request.match_info["call_id"], LIVE_SESSIONS)
            async with self.dialer.fetch(
                channel,
                call.provider_call_id,
                LIVE_CONTENT_SUFFIX.lstrip("/"),
                request_id=request_id,
                timeout=self.relay.settings.timeouts.dial,
                route=LIVE_SESSIONS,
            ) as upstream:
                headers = {"X-Request-Id": request_id, **cors}
                if upstream.content_type:
                    headers["Content-Type"] = upstream.content_type
                if upstream.status >= 300:  # an error names the session: the provider's id
                    error = await upstream.content.read(MAX_REFUSAL_BODY)
                    masked = _masked(error, call, request.match_info["call_id"])
                    return web.Response(status=upstream.status, body=masked, headers=headers)
                response = web.StreamResponse(status=upstream.status, headers=headers)
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (RelayError, DialFailure) as exc:
            return _control_refusal(exc, request_id, cors)

    async def _owned(
        self, hello: ClientHello, call_id: str, route: CallRoute
    ) -> tuple[CallRecord, Channel]:
        """The call ``call_id`` if the caller's key owns it and it is ``route``'s kind.

        Raises:
            RelayError: a bad credential or origin; ``call_not_found`` for anything else.
        """
        relay = self.relay
        key, _ = await relay.gate.authenticate(hello.credential)
        relay.gate.check_origin(key, hello.origin)
        call = await relay.parts.store.find_call(call_id)
        if (
            call is None
            or call.key_id != (key.id if key is not None else None)
            or call_route(call.model).family != route.family
        ):
            raise CallNotFound(param="call_id")
        channel = next((c for c in relay.router.channels if c.name == call.channel), None)
        if channel is None:
            raise CallNotFound(param="call_id")
        return call, channel

    # -- the registry -------------------------------------------------------------------------
    async def _register(self, run: CallRun) -> None:
        """Record the call so any relay resolves its id and a restart finds it.

        A store that cannot be reached does not stop the call: it is metered all the same
        by its live sideband (the ledger writer journals the rows); only resolving the id
        elsewhere and the restart sweep miss it, and both are logged.
        """
        record = CallRecord(
            call_id=run.call_id,
            provider_call_id=run.answered.provider_call_id,
            channel=run.channel,
            model=run.admission.model or "",
            key_id=run.admission.key_id,
            session_id=run.session_id,
            node=self.relay.parts.node,
            pid=os.getpid(),
            created_at=datetime.now(UTC),
        )
        try:
            await self.relay.parts.store.register_call(record)
        except Exception:
            edge_log.warning(
                "call not registered",
                extra={"event": "call_unregistered", "call_id": run.call_id},
                exc_info=True,
            )

    def _forget(self, run: CallRun) -> None:
        self.calls.pop(run.call_id, None)

    async def recover(self) -> int:
        """Hang up the calls a dead process of this node left live (start-up).

        Their sidebands died with that process, so they would run unmetered: they are
        hung up rather than re-attached (their leases and budgets lived in the dead
        process too; the session rows were already marked ``interrupted``). Workers of
        one ``serve --workers N`` share the node name, so a call is an orphan only if
        the process that owned it is gone: a respawned worker leaves its siblings' be.
        """
        store, router = self.relay.parts.store, self.relay.router
        hung = 0
        for call in await store.live_calls(node=self.relay.parts.node):
            if call.pid is not None and _alive(call.pid):
                continue
            channel = next((c for c in router.channels if c.name == call.channel), None)
            if channel is not None:
                await self.dialer.hangup(
                    channel,
                    call.provider_call_id,
                    request_id=new_request_id(),
                    route=call_route(call.model),
                )
            await store.end_call(call.call_id)
            hung += 1
        if hung:
            edge_log.warning(
                "calls left live by a previous run hung up",
                extra={"event": "calls_recovered", "count": hung},
            )
        return hung

    async def close(self) -> None:
        """Shutdown: end every call (hung up, settled), then give up on stragglers."""
        runs = list(self.calls.values())
        for run in runs:
            run.stop(RelayShuttingDown())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await asyncio.gather(*(run.wait() for run in runs))
        for run in runs:
            if run.task is not None:
                await cancel_and_wait(run.task)

    async def refresh_spend(self) -> None:
        """Reload live calls' key spend (``Relay.refresh_spend``'s rule, for calls)."""
        keys = {r.admission.key_id for r in self.calls.values() if r.session.budget is not None}
        for key_id in keys:
            if key_id is not None:
                await self.relay.parts.spend.spent(key_id)

    def live(self) -> list[dict[str, Any]]:
        return [run.describe() for run in self.calls.values()]


def _answer(run: CallRun, request_id: str, cors: dict[str, str]) -> web.Response:
    """The provider's answer as the client gets it: the relay's id in place of the
    provider's, ``Location`` (where the provider sent one) rewritten to the relay's."""
    answered, route = run.answered, run.route
    headers = {"X-Request-Id": request_id, **cors}
    if answered.location is not None:
        headers["Location"] = f"{route.path}/{run.call_id}"
    # Only this answer needs the provider's SDP and body: the call no longer keeps them
    # (~4 KB of a call's ~20 KB of heap, measured by rtrelay bench --webrtc --trace-memory).
    run.answered = replace(answered, sdp="", body=b"")
    if route.family == "realtime":
        return web.Response(
            status=201, text=answered.sdp, content_type="application/sdp", headers=headers
        )
    body = answered.body.replace(answered.provider_call_id.encode(), run.call_id.encode())
    return web.Response(
        status=answered.status, body=body, content_type="application/json", headers=headers
    )


def _masked(body: bytes, call: CallRecord, call_id: str) -> bytes:
    """A provider's answer about ``call`` with its id replaced by the relay's."""
    return body.replace(call.provider_call_id.encode(), call_id.encode())


def _control_refusal(
    exc: RelayError | DialFailure, request_id: str, cors: dict[str, str]
) -> web.Response:
    """A control refused by the relay, or a provider that could not be reached."""
    if isinstance(exc, DialFailure):
        exc = (
            UpstreamTimeout()
            if exc.kind is FailureKind.TIMEOUT
            else UpstreamUnavailable(f"The provider could not be reached ({exc.detail}).")
        )
    response = http_refusal(exc, request_id)
    response.headers.update(cors)
    return response


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (signal 0 checks, sends nothing)."""
    if pid == os.getpid():
        return False  # our own pid in an old row: a restart that got the same pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process has the pid now: our worker is gone
    return True


def _call_channels(plan: list[Any], model: str) -> list[Any]:
    """The admitted channels that serve WebRTC calls.

    Raises:
        ModelNotFound: every channel for the model is of a kind without WebRTC (Azure).
    """
    channels = [c for c in plan if c.kind in CALL_KINDS]
    if plan and not channels:
        raise ModelNotFound(
            f"No channel serving '{model}' supports WebRTC calls (Azure channels do not); "
            "connect over WebSocket instead.",
            param="model",
        )
    return channels
