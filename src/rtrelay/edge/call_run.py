"""One owner per WebRTC call: the relay's own sideband, from attach to the settled row.

A call's media runs device ↔ provider, so the relay sees nothing of it unless it joins
the call: ``CallRun`` attaches a WebSocket sideband (``/realtime?call_id=…``) *before*
the client gets its answer, and keeps it for the call's life. Every provider event it
reads goes through the same session core as a WebSocket session (``bridge/session.py``
with the ``RealtimeMeter``): ``response.done`` and transcription usage are metered into
the same rows, a spent budget cancels responses (``response.cancel`` on the sideband)
and ends the call, and the watchdog's rules (max length, idle) apply. Whatever ends the
call, one ``finally`` hangs it up at the provider (a call whose sideband is gone would
run unmetered), releases the lease, marks the registry row ended and writes the
session-end row with ``transport = webrtc``.

A GPT-Live session over WebRTC is run the same way on its own route (``CallRoute``:
sideband ``/live/sessions/{id}/attach``) and protocol (``LIVE``: ``session.usage.updated``
metered by the ``LiveMeter``, 15 s at least). When the relay ends it (a spent budget, the
max length) it first sends the protocol's ``session.close`` on the sideband and meters
what the provider reports until it closes (``session.closed`` carries the final usage),
then hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
from aiohttp import WSMsgType

from rtrelay.bridge.protocols import LIVE, REALTIME, Meter, WireProtocol
from rtrelay.bridge.pump import response_cancel
from rtrelay.bridge.session import Actions, End, Session
from rtrelay.config import Settings
from rtrelay.edge.handshake import ClientHello
from rtrelay.edge.session_run import session_core, start_row
from rtrelay.edge.wiring import Parts
from rtrelay.errors import (
    EndedByOperator,
    IdleTimeout,
    RelayError,
    RelayShuttingDown,
    SessionExpired,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from rtrelay.gate.admission import Admission
from rtrelay.ledger.records import SessionEnd, SessionStart
from rtrelay.log import edge_log
from rtrelay.observe.metrics import Metrics
from rtrelay.route.calls import REALTIME_CALLS, Answered, CallDialer, CallRoute
from rtrelay.route.dial import DialFailure, FailureKind

__all__ = ["CallRun"]

_NORMAL_ENDINGS: Final = (IdleTimeout, SessionExpired, RelayShuttingDown, EndedByOperator)
_TEXT: Final = WSMsgType.TEXT
_DATA: Final = (WSMsgType.TEXT, WSMsgType.BINARY)
_FAREWELL_WAIT: Final = 3.0
"""Seconds the provider has to end a session the relay closed (``session.closed``)."""


@dataclass(slots=True)
class CallRun:
    """A live call, metered on the relay's own sideband (what the relay lists while it runs)."""

    settings: Settings
    parts: Parts
    metrics: Metrics
    dialer: CallDialer
    hello: ClientHello
    admission: Admission[Any]
    answered: Answered
    call_id: str
    """The relay's id (``rcall_…``): the only one the client ever sees."""
    arrived: float
    route: CallRoute = REALTIME_CALLS
    """The call's protocol route: a Realtime call or a GPT-Live session."""
    started: float = field(default_factory=time.monotonic)
    ws: aiohttp.ClientWebSocketResponse[bool] | None = None
    meter: Meter = field(init=False)
    session: Session = field(init=False)
    frames: int = 0
    bytes: int = 0
    task: asyncio.Task[None] | None = None
    _stop: RelayError | None = None

    @property
    def session_id(self) -> str:
        return self.admission.session_id

    @property
    def channel(self) -> str:
        return self.answered.channel.name

    @property
    def protocol(self) -> WireProtocol:
        return LIVE if self.route.family == "live" else REALTIME

    async def attach(self) -> None:
        """Attach the metering sideband, within ``timeouts.sideband_attach``.

        Raises:
            UpstreamRejected (502, the provider refused it), UpstreamTimeout (504) or
            UpstreamUnavailable (503): the call was hung up at the provider first.
        """
        timeout = self.settings.timeouts.sideband_attach
        started = time.monotonic()
        try:
            self.ws = await self.dialer.sideband(
                self.answered.channel,
                self.answered.provider_call_id,
                request_id=self.hello.request_id,
                timeout=timeout,
                route=self.route,
            )
        except DialFailure as failure:
            self.metrics.sideband_attach_failures.labels(self.channel, str(failure.kind)).inc()
            await self._hang_up()
            raise _attach_error(failure, timeout) from failure
        self.metrics.sideband_attach_latency.labels(self.channel).observe(
            time.monotonic() - started
        )

    def start(self, done: Callable[[CallRun], None]) -> None:
        """Run the call in its own task; ``done(self)`` once it is settled."""
        self.meter, self.session = session_core(
            self.settings,
            self.parts,
            self.metrics,
            self.admission,
            protocol=self.protocol,
            webrtc=True,
        )
        self.parts.writer.submit(self._start_row())
        self.metrics.handshakes.labels("success").inc()
        self.metrics.active_calls.inc()
        edge_log.info("call open", extra=self._fields("call_start"))

        async def run() -> None:
            try:
                await self._run()
            finally:
                done(self)

        self.task = asyncio.create_task(run(), name=f"rtrelay.call.{self.call_id}")

    def stop(self, error: RelayError) -> None:
        """End the call (shutdown, an operator): hung up within a watchdog tick."""
        if self._stop is None:
            self._stop = error

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.wait({self.task})

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "call_id": self.call_id,
            "transport": "webrtc",
            "protocol": self.protocol.name,
            "request_id": self.hello.request_id,
            "key_prefix": self.admission.key_prefix,
            "model": self.admission.model,
            "channel": self.channel,
            "age_seconds": round(time.monotonic() - self.started, 3),
            "frames_out": self.frames,
            "bytes_out": self.bytes,
            "responses": self.meter.usage.responses,
            "cost_usd": str(self.meter.usage.cost_usd),
        }

    # -- the call's life -----------------------------------------------------------------------
    async def _run(self) -> None:
        end: End | None = None
        try:
            end = await self._pump()
            await self._farewell(end)
        except Exception:
            edge_log.error("call failed", extra=self._fields("error"), exc_info=True)
        finally:
            # However it ended: a call without its sideband would run unmetered.
            await self._hang_up()
            if self.ws is not None and not self.ws.closed:
                with contextlib.suppress(Exception):
                    await self.ws.close()
            await self.admission.release()
            try:
                await self.parts.store.end_call(self.call_id)
            except Exception:  # the store is down: the next start-up hangs it up again
                edge_log.warning("call registry not updated", exc_info=True)
            self.metrics.active_calls.dec()
            self.session.finish(time.monotonic())
            self._settle(end)

    async def _pump(self) -> End:
        """Read the sideband through the session core; tick the watchdog's rules."""
        ws, session = self.ws, self.session
        assert ws is not None, "CallRun.attach() was not awaited"
        t = session.timeouts
        limits = [x for x in (t.idle, t.max_session) if x is not None]
        tick = max(0.05, min(1.0, *(x / 4 for x in limits)))
        next_tick = time.monotonic() + tick
        while True:
            if self._stop is not None:
                return End("relay", error=self._stop)
            try:
                msg = await ws.receive(timeout=max(0.0, next_tick - time.monotonic()))
            except TimeoutError:
                msg = None
            if msg is not None:
                kind = msg.type
                if kind in _DATA:
                    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                    self.frames += 1
                    self.bytes += len(data)
                    decision = session.server_frame(data)
                    if decision is not None and (end := await self._act(decision)) is not None:
                        return end
                elif kind is WSMsgType.CLOSE:
                    return session.upstream_gone(msg.data, msg.extra or "", dropped=False)
                else:
                    return session.upstream_gone(ws.close_code, "", dropped=True)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + tick
                decision = session.tick(now, self.frames, 0.0)
                if decision is not None and (end := await self._act(decision)) is not None:
                    return end

    async def _farewell(self, end: End) -> None:
        """The relay ended the call: end the provider session cleanly where the protocol
        can (GPT-Live's ``session.close``) and meter what it still reports, as the
        provider bills it, until it closes the sideband or ``_FAREWELL_WAIT`` passes."""
        farewell = self.session.close_plan(end).farewell if end.closer == "relay" else None
        ws = self.ws
        if farewell is None or ws is None or ws.closed:
            return
        try:
            await ws.send_frame(farewell, _TEXT)
            async with asyncio.timeout(_FAREWELL_WAIT):
                async for msg in ws:
                    if msg.type in _DATA:
                        data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                        self.frames += 1
                        self.bytes += len(data)
                        self.session.server_frame(data)
        except (TimeoutError, ConnectionError):
            pass  # the hangup that follows ends it all the same

    async def _act(self, decision: Actions | End) -> End | None:
        """Cancel what the core says to on the sideband (the data channel is not ours)."""
        if isinstance(decision, End):
            return decision
        assert self.ws is not None
        for response_id in decision.cancel:
            with contextlib.suppress(ConnectionError):
                await self.ws.send_frame(response_cancel(response_id), _TEXT)
        return None

    async def _hang_up(self) -> None:
        hung_up = await self.dialer.hangup(
            self.answered.channel,
            self.answered.provider_call_id,
            request_id=self.hello.request_id,
            route=self.route,
        )
        if not hung_up:
            edge_log.warning("call hangup failed", extra=self._fields("hangup_failed"))

    # -- records -------------------------------------------------------------------------------
    def _start_row(self) -> SessionStart:
        return start_row(
            self.admission,
            self.hello,
            self.channel,
            self.parts.node,
            self.answered.attempts,
            transport="webrtc",
        )

    def _settle(self, end: End | None) -> None:
        error = end.error if end else None
        failed = end is None or (error is not None and not isinstance(error, _NORMAL_ENDINGS))
        duration = time.monotonic() - self.started
        upstream_code = end.code if end is not None and end.closer == "upstream" else None
        self.parts.writer.submit(
            SessionEnd(
                session_id=self.session_id,
                ended_at=datetime.now(UTC),
                status="failed" if failed else "completed",
                frames_from_client=0,
                bytes_from_client=0,
                frames_from_upstream=self.frames,
                bytes_from_upstream=self.bytes,
                client_close_code=None,
                upstream_close_code=upstream_code,
                error_code=error.code if error else None,
                duration_s=duration,
            )
        )
        m, session = self.metrics, self.session
        m.session_duration.observe(duration)
        if error is not None:
            m.session_errors.labels(error.code).inc()
        if session.cancelled:
            m.budget_refusals.labels("response.cancelled").inc(session.cancelled)
        usage = self.meter.usage
        fields = self._fields("call_end")
        fields.update(
            duration_s=round(duration, 3),
            frames_out=self.frames,
            closed_by=end.closer if end else "relay",
            error_code=error.code if error else None,
            responses=usage.responses,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            seconds=str(usage.seconds),
            cost_usd=str(usage.cost_usd),
        )
        edge_log.info("call closed", extra=fields)

    def _fields(self, event: str) -> dict[str, Any]:
        return {
            "event": event,
            "request_id": self.hello.request_id,
            "session_id": self.session_id,
            "call_id": self.call_id,
            "key_prefix": self.admission.key_prefix,
            "model": self.admission.model,
            "channel": self.channel,
        }


def _attach_error(failure: DialFailure, timeout: float) -> RelayError:
    """The table row for a metering sideband that could not be attached (call hung up)."""
    hung = "the call was hung up, as no call may run unmetered"
    if failure.kind is FailureKind.TIMEOUT:
        return UpstreamTimeout(
            f"The relay's metering sideband was not attached within {timeout:g} s; {hung}."
        )
    if failure.kind is FailureKind.REFUSED:
        return UpstreamRejected(
            f"The provider refused the relay's metering sideband with HTTP {failure.status}; "
            f"{hung}."
        )
    return UpstreamUnavailable(
        f"The relay's metering sideband could not reach the provider ({failure.detail}); {hung}.",
        retry_after=1,
    )
