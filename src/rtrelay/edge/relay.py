"""The WebSocket relay: the thin aiohttp adapter over admission, dial and session.

edge (parse the upgrade) → gate (``Gate.admit``: the one admission pipeline) → route
(dial, failover) → only then accept the client → ``SessionRun`` (the session's one
owner: bridge, ledger rows, metrics, log) . A refusal at any step is recorded and
answered in one place (``refuse``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final

from aiohttp import web

from rtrelay.bridge.protocols import LIVE, REALTIME, TRANSLATION, WireProtocol
from rtrelay.bridge.pump import ClientLeg
from rtrelay.config import Channel, Settings
from rtrelay.edge.handshake import ClientHello, new_request_id, parse_hello
from rtrelay.edge.refuse import record_refusal, refuse
from rtrelay.edge.server import client_watch
from rtrelay.edge.session_run import SessionRun
from rtrelay.edge.wiring import Parts
from rtrelay.errors import (
    CallNotFound,
    ClientGone,
    InternalError,
    MalformedRequest,
    RelayError,
    RelayShuttingDown,
    UpgradeRequired,
)
from rtrelay.gate.admission import Admission, Ask, Gate, KeyInfo, Refused
from rtrelay.log import edge_log
from rtrelay.observe.metrics import CIRCUIT_STATES, Metrics
from rtrelay.route.calls import CallDialer, call_route
from rtrelay.route.families import Family, require_family
from rtrelay.route.router import Attempt, Connected, Router, RoutingFailed
from rtrelay.wire import CALL_ID_PARAM

__all__ = ["Relay"]

_PROTOCOLS: Final[dict[Family, WireProtocol]] = {"live": LIVE, "translation": TRANSLATION}
"""The wire protocol of a session of each family that is not Realtime's."""


def _protocol(family: Family, *, sideband: bool) -> WireProtocol:
    """The wire protocol of a session of ``family``. An app's sideband is not the session it
    joins: the relay closing the sideband (an operator, a limit) must not end the session,
    so it sends no ``session.close``; the relay's own sideband (``CallRun``) ends sessions."""
    protocol = _PROTOCOLS.get(family, REALTIME)
    return replace(protocol, close_frame=None) if sideband else protocol


_BAD_UPGRADE: Final = (
    "The WebSocket upgrade is invalid: check the Connection, Sec-WebSocket-Key and "
    "Sec-WebSocket-Version headers."
)


@dataclass(slots=True)
class Relay:
    settings: Settings
    parts: Parts
    router: Router
    metrics: Metrics = field(default_factory=Metrics)
    sessions: dict[str, SessionRun] = field(default_factory=dict)
    draining: bool = False
    calls: CallDialer | None = None
    """Dials app servers' sidebands to WebRTC calls (``?call_id=``); set by the app."""
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def gate(self) -> Gate:
        return self.parts.gate

    def live_sessions(self) -> list[dict[str, Any]]:
        return [run.describe() for run in self.sessions.values()]

    BAD_UPGRADE: ClassVar[str] = _BAD_UPGRADE

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/realtime`` (and aliases): a Realtime session, a transcription session
        (``?intent=transcription``) or an app server's sideband to a call (``?call_id=``)."""
        intent = request.query.get("intent", "").lower()
        return await self._handle(
            request, "transcription" if intent == "transcription" else "realtime"
        )

    async def handle_translation(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/realtime/translations?model=M``: a realtime translation session."""
        return await self._handle(request, "translation")

    async def handle_live_attach(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/live/sessions/{id}/attach``: an app server's sideband to a GPT-Live
        WebRTC session, relayed with the Live protocol like ``?call_id=`` for a call.

        Refusals are HTTP whatever ``server.handshake_errors`` says: the caller is a
        server, and before the 101 there is no Live session to send a Live error on."""
        return await self._handle(request, "live", call_id=request.match_info["call_id"])

    async def _handle(
        self, request: web.Request, family: Family, call_id: str | None = None
    ) -> web.StreamResponse:
        arrived = time.monotonic()
        hello = parse_hello(
            request.headers,
            request.query,
            request_id=new_request_id(),
            handshake_errors="http" if call_id else self.settings.server.handshake_errors,
        )
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return await self.refuse(request, replace(hello, error_style="http"), UpgradeRequired())
        if not ClientLeg().can_prepare(request):
            # A bad Sec-WebSocket-Key, version or Connection: say so now, not after a dial.
            bad = MalformedRequest(_BAD_UPGRADE)
            return await self.refuse(request, replace(hello, error_style="http"), bad)
        admission: Admission[Any] | None = None
        if family != "live":
            call_id = request.query.get(CALL_ID_PARAM)
        try:
            async with client_watch(request):  # a client that hangs up: cancel, ClientGone
                if self.draining:
                    raise RelayShuttingDown(retry_after=1)
                if call_id is not None:
                    admission, connected = await self._join_call(hello, call_id, family)
                else:
                    model = hello.model
                    if family == "transcription" and model is None:
                        model = ""  # the transcription model is in the session config
                    ask = Ask(hello.credential, model, hello.origin, beta=hello.beta)
                    admission = await self.gate.admit(ask, self.route_for(family))
                    connected = await self.dial(hello, admission, family)
        except BaseException as exc:
            error, key = await self.undo(exc, hello, admission)
            return await self.refuse(request, hello, error, key, exc)
        run = SessionRun(
            self.settings,
            self.parts,
            self.metrics,
            hello,
            admission,
            connected,
            arrived,
            billing=call_id is None,
            protocol=_protocol(family, sideband=call_id is not None),
        )
        return await run.run(request, self.register(run))

    def route_plan(self, model: str, beta: bool) -> list[Any]:
        """The channels for a Realtime model in dial order (``Gate.admit``'s route step)."""
        return self.route_for("realtime")(model, beta)

    def route_for(self, family: Family) -> Callable[[str, bool], list[Any]]:
        """The route step for a session of ``family``: a model of another protocol is
        refused naming its route (``wrong_protocol_route``), before any lease or dial."""

        def plan(model: str, beta: bool) -> list[Any]:
            if model:
                require_family(model, family)
            return self.router.candidates(model, beta=beta, family=family)

        return plan

    async def dial(
        self, hello: ClientHello, admission: Admission[Any], family: Family = "realtime"
    ) -> Connected:
        """Dial the admitted channels in order (failover), and observe the attempts."""
        t = self.settings.timeouts
        connected = await self.router.connect(
            admission.model or "",
            beta=hello.beta,
            request_id=hello.request_id,
            dial_timeout=t.dial,
            deadline=t.handshake_deadline,
            channels=admission.plan,
            family=family,
        )
        self.observe_attempts(connected.attempts)
        return connected

    async def _join_call(
        self, hello: ClientHello, call_id: str, family: Family = "realtime"
    ) -> tuple[Admission[Any], Connected]:
        """An app server's sideband to a WebRTC call (``?call_id=<relay call id>``) or a
        GPT-Live session (``/v1/live/sessions/<relay id>/attach``).

        Admitted as a session of the call's model, for the key that created the call
        only (anyone else's id, another protocol's, or an unknown one:
        ``call_not_found``, after the credential is checked); dialed on the call's
        channel with the provider's id. The caller runs it as a normal session that is
        not billed: the relay's own sideband meters the call. No ``session.created`` (or
        ``session.started``) arrives first on a sideband.

        Raises:
            Refused, RelayError, RoutingFailed: as for a session's handshake.
        """
        call = await self.parts.store.find_call(call_id)
        route = call_route(call.model) if call is not None else None
        if call is None or route is None or (route.family == "live") != (family == "live"):
            await self.gate.authenticate(hello.credential)  # a bad key is told so first
            raise CallNotFound(param=CALL_ID_PARAM)
        ask = Ask(hello.credential, call.model, hello.origin, beta=hello.beta)
        admission = await self.gate.admit(ask, self.route_for(route.family))
        try:
            channel = next((c for c in self.router.channels if c.name == call.channel), None)
            if admission.key_id != call.key_id or call.state != "live" or channel is None:
                raise Refused(CallNotFound(param=CALL_ID_PARAM), admission.key)
            dialer, provider_id = self.calls, call.provider_call_id
            assert dialer is not None, "the app sets Relay.calls"

            async def dial(channel: Channel, timeout: float) -> Any:
                return await dialer.sideband(
                    channel,
                    provider_id,
                    request_id=hello.request_id,
                    timeout=timeout,
                    route=route,
                )

            t = self.settings.timeouts
            ws, channel, attempts = await self.router.failover(
                [channel], dial, dial_timeout=t.dial, deadline=t.handshake_deadline
            )
        except BaseException:
            await admission.release()
            raise
        self.observe_attempts(attempts)
        return admission, Connected(ws=ws, channel=channel, attempts=attempts)

    async def undo(
        self, exc: BaseException, hello: ClientHello, admission: Admission[Any] | None
    ) -> tuple[RelayError, KeyInfo | None]:
        """A handshake step after admission failed: give the lease back, then say which table
        row explains it and whose key it was. A cancellation (not an ``Exception``) is
        raised again once the lease is back."""
        if admission is not None:
            await admission.release()
        if not isinstance(exc, Exception):
            raise exc
        error, key = self.explain(exc, hello)
        return error, admission.key if admission is not None else key

    def explain(self, exc: Exception, hello: ClientHello) -> tuple[RelayError, KeyInfo | None]:
        """The table row a failed handshake step is answered with, and the key if known."""
        if isinstance(exc, Refused):
            return exc.error, exc.key
        if isinstance(exc, RoutingFailed):
            self.observe_attempts(exc.attempts)
            return exc.error, None
        if isinstance(exc, RelayError):
            return exc, None
        # A dependency failed or a bug: log it, explain it generically.
        edge_log.error(
            "handshake failed",
            extra={"event": "error", "request_id": hello.request_id},
            exc_info=exc,
        )
        return InternalError(), None

    def register(self, run: SessionRun) -> Any:
        """The callback ``SessionRun.run`` lists and unlists a live session with."""

        def register(live: SessionRun | None) -> None:
            if live is not None:
                self.sessions[run.session_id] = live
                self._idle.clear()
                return
            self.sessions.pop(run.session_id, None)
            if not self.sessions:
                self._idle.set()

        return register

    async def refuse(
        self,
        request: web.Request,
        hello: ClientHello,
        error: RelayError,
        key: KeyInfo | None = None,
        cause: BaseException | None = None,
        *,
        live: bool = False,
    ) -> web.StreamResponse:
        """Refuse a handshake (HTTP, or event style: in GPT-Live's shape on its route) and
        record it."""
        if isinstance(error, ClientGone):
            hello = replace(hello, error_style="http")  # nobody is left to read an event
        self.record(hello, error, key, cause)
        return await refuse(request, hello, error, live=live)

    def record(
        self,
        hello: ClientHello,
        error: RelayError,
        key: KeyInfo | None = None,
        cause: BaseException | None = None,
    ) -> None:
        """Count, log and write one refusal (with the dial attempts that led to it)."""
        attempts = cause.attempts if isinstance(cause, RoutingFailed) else ()
        record_refusal(self.parts.writer, self.metrics, hello, error, key, attempts)

    def observe_attempts(self, attempts: tuple[Attempt, ...] | list[Attempt]) -> None:
        m = self.metrics
        for a in attempts:
            if a.outcome == "ok":
                m.dial_latency.labels(a.channel).observe(a.seconds)
            elif not a.outcome.startswith("skipped"):
                m.dial_failures.labels(a.channel, a.outcome).inc()
            state = self.router.breakers[a.channel].state
            m.circuit_state.labels(a.channel).set(CIRCUIT_STATES[state.value])

    async def refresh_spend(self) -> None:
        """Reload live sessions' key spend from the store, so spend through other relays
        reaches their budget checks (``SpendBook`` caches it for its refresh interval)."""
        keys = {r.admission.key_id for r in self.sessions.values() if r.session.budget is not None}
        for key_id in keys:
            if key_id is not None:
                await self.parts.spend.spent(key_id)

    def flush_metrics(self) -> None:
        """Fold live sessions' counters and channel states into the metrics."""
        for run in list(self.sessions.values()):
            run.flush_counters()
        for name, breaker in self.router.breakers.items():
            self.metrics.circuit_state.labels(name).set(CIRCUIT_STATES[breaker.state.value])
        self.metrics.observe_ledger(self.parts.writer.snapshot())
        limits = self.parts.limits
        if limits is not None and limits.fallbacks:  # Redis down, on_error = "open"
            for limit, count in limits.fallbacks.items():
                self.metrics.limits_fallback.labels(limit).inc(count)
            limits.fallbacks.clear()

    async def drain(self, window: float) -> None:
        """Refuse new sessions, let live ones finish for ``window`` s, then end them."""
        self.draining = True
        if self.sessions:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(window):
                    await self._idle.wait()
        for run in list(self.sessions.values()):
            run.bridge.stop(RelayShuttingDown())
        if self.sessions:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(15.0):
                    await self._idle.wait()
