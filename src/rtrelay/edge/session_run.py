"""One owner per session: from the accepted upgrade to the settled ledger row.

``SessionRun`` builds the session's parts (the protocol meter, the session core, the
bridge), writes the session-start row, accepts the client, runs the bridge, and then,
in one ``finally`` however the session ended, releases the lease, closes the provider
leg, writes the session-end row, updates the metrics and logs the closing line.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from rtrelay.bridge.protocols import REALTIME, Meter, WireProtocol, make_meter
from rtrelay.bridge.pump import Bridge, ClientLeg
from rtrelay.bridge.session import End, Session
from rtrelay.config import Settings
from rtrelay.edge.handshake import ClientHello
from rtrelay.edge.wiring import Parts
from rtrelay.errors import EndedByOperator, IdleTimeout, RelayShuttingDown, SessionExpired
from rtrelay.gate.admission import Admission
from rtrelay.gate.transcription import transcription_screen
from rtrelay.ledger.records import ChannelAttempt, SessionEnd, SessionStart, Transport
from rtrelay.log import edge_log
from rtrelay.observe.metrics import Metrics
from rtrelay.route.router import Attempt, Connected

__all__ = [
    "SessionRun",
    "attempts_of",
    "client_leg",
    "session_core",
    "start_row",
]

_NORMAL_ENDINGS: Final = (IdleTimeout, SessionExpired, RelayShuttingDown, EndedByOperator)


@dataclass(slots=True)
class SessionRun:
    """A live session (also what the admin API lists while it runs)."""

    settings: Settings
    parts: Parts
    metrics: Metrics
    hello: ClientHello
    admission: Admission[Any]
    connected: Connected
    arrived: float
    """When the upgrade request arrived (``time.monotonic()``)."""
    billing: bool = True
    """``False`` for an app server's sideband to a WebRTC call: the relay's own sideband
    (``CallRun``) already meters that call, so this session writes no usage and spends
    nothing (and leaves the budget to that sideband)."""
    protocol: WireProtocol = REALTIME
    client_leg: ClientLeg | None = None
    """The client's WebSocket when it was accepted before the dial (GPT-Live: the model
    arrives after the 101); ``None``: ``run`` accepts it."""
    first_frame: int = 0
    """Bytes of a client frame already forwarded before the bridge ran (``session.start``)."""
    started: float = field(default_factory=time.monotonic)
    meter: Meter = field(init=False)
    session: Session = field(init=False)
    bridge: Bridge = field(init=False)
    client: ClientLeg = field(init=False)
    flushed: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    """Frames/bytes each way already added to the metrics."""

    @property
    def session_id(self) -> str:
        return self.admission.session_id

    @property
    def channel(self) -> str:
        return self.connected.channel.name

    async def run(
        self, request: web.Request, register: Callable[[SessionRun | None], None]
    ) -> web.StreamResponse:
        """Accept the client and relay until either side ends; ``register(self)`` while live,
        ``register(None)`` once over."""
        s, admission = self.settings, self.admission
        self.client = self.client_leg or client_leg(s, self.hello)
        self.meter, self.session = session_core(
            s, self.parts, self.metrics, admission, billing=self.billing, protocol=self.protocol
        )
        self.bridge = Bridge(
            client=self.client,
            upstream=self.connected.ws,
            client_transport=request.transport,
            session=self.session,
        )
        if self.first_frame:
            self.bridge.counters.frames_in, self.bridge.counters.bytes_in = 1, self.first_frame
        end: End | None = None
        register(self)
        self.parts.writer.submit(self._start_row())
        try:
            if not self.client.prepared:
                await self.client.prepare(request)
            self.metrics.handshakes.labels("success").inc()
            self.metrics.active_sessions.inc()
            edge_log.info("session open", extra=self._open_fields())
            end = await self.bridge.run()
        finally:
            register(None)
            if self.client.prepared:
                self.metrics.active_sessions.dec()
                if self.bridge.first_frame_at:
                    self.metrics.first_event.observe(self.bridge.first_frame_at - self.arrived)
            if not self.connected.ws.closed:
                with contextlib.suppress(Exception):  # the bridge closed it; this is a backstop
                    await self.connected.ws.close()
            await admission.release()
            self.session.finish(time.monotonic())
            self._settle(end)
        return self.client

    def describe(self) -> dict[str, Any]:
        c = self.bridge.counters
        return {
            "id": self.session_id,
            "request_id": self.hello.request_id,
            "key_prefix": self.admission.key_prefix,
            "model": self.admission.model,
            "channel": self.channel,
            "age_seconds": round(time.monotonic() - self.started, 3),
            "frames_in": c.frames_in,
            "frames_out": c.frames_out,
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "responses": self.meter.usage.responses,
            "cost_usd": str(self.meter.usage.cost_usd),
        }

    def flush_counters(self) -> None:
        """Add what the session forwarded since the last flush to the metrics."""
        c = self.bridge.counters
        now = [c.frames_in, c.frames_out, c.bytes_in, c.bytes_out]
        m = self.metrics
        for series, value, before in zip(
            (m.frames_in, m.frames_out, m.bytes_in, m.bytes_out), now, self.flushed, strict=True
        ):
            if value > before:
                series.inc(value - before)
        self.flushed = now
        samples = self.bridge.latency_samples
        if samples:
            for seconds in samples:
                m.added_latency.observe(seconds)
            samples.clear()

    def _start_row(self) -> SessionStart:
        return start_row(
            self.admission, self.hello, self.channel, self.parts.node, self.connected.attempts
        )

    def _open_fields(self) -> dict[str, Any]:
        return {
            "event": "session_start",
            "request_id": self.hello.request_id,
            "session_id": self.session_id,
            "key_prefix": self.admission.key_prefix,
            "model": self.admission.model,
            "channel": self.channel,
            "attempts": [(a.channel, a.outcome) for a in self.connected.attempts],
        }

    def _settle(self, end: End | None) -> None:
        """The session-end row, the metrics and the closing log line."""
        c, bridge, session = self.bridge.counters, self.bridge, self.session
        error = end.error if end else None
        failed = end is None or (error is not None and not isinstance(error, _NORMAL_ENDINGS))
        duration = time.monotonic() - self.started
        self.parts.writer.submit(
            SessionEnd(
                session_id=self.session_id,
                ended_at=datetime.now(UTC),
                status="failed" if failed else "completed",
                frames_from_client=c.frames_in,
                bytes_from_client=c.bytes_in,
                frames_from_upstream=c.frames_out,
                bytes_from_upstream=c.bytes_out,
                client_close_code=bridge.client_close_code,
                upstream_close_code=bridge.upstream_close_code,
                error_code=error.code if error else None,
                duration_s=duration,
            )
        )
        self.flush_counters()
        m = self.metrics
        m.session_duration.observe(duration)
        if bridge.client_close_code is not None:
            m.closes.labels("client", str(bridge.client_close_code)).inc()
        if bridge.upstream_close_code is not None:
            m.closes.labels("upstream", str(bridge.upstream_close_code)).inc()
        if error is not None:
            m.session_errors.labels(error.code).inc()
        if session.refused:
            m.budget_refusals.labels("response.create").inc(session.refused)
        if session.cancelled:
            m.budget_refusals.labels("response.cancelled").inc(session.cancelled)
        usage = self.meter.usage
        edge_log.info(
            "session closed",
            extra={
                "event": "session_end",
                "request_id": self.hello.request_id,
                "session_id": self.session_id,
                "key_prefix": self.admission.key_prefix,
                "model": self.admission.model,
                "channel": self.channel,
                "duration_s": round(duration, 3),
                "frames_in": c.frames_in,
                "frames_out": c.frames_out,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "closed_by": end.closer if end else "relay",
                "client_close_code": bridge.client_close_code,
                "upstream_close_code": bridge.upstream_close_code,
                "error_code": error.code if error else None,
                "responses": usage.responses,
                "tokens_in": usage.tokens_in,
                "tokens_out": usage.tokens_out,
                "seconds": str(usage.seconds),
                "cost_usd": str(usage.cost_usd),
            },
        )


def client_leg(settings: Settings, hello: ClientHello) -> ClientLeg:
    """The client's WebSocket, as every session accepts it."""
    leg = ClientLeg(
        protocols=(hello.echo_protocol,) if hello.echo_protocol else (),
        compress=False,
        max_msg_size=settings.limits.max_frame_bytes,
        autoclose=False,
        autoping=True,
        heartbeat=settings.timeouts.heartbeat,
        decode_text=False,
        timeout=5.0,
    )
    leg.headers["X-Request-Id"] = hello.request_id
    return leg


def session_core(
    settings: Settings,
    parts: Parts,
    metrics: Metrics,
    admission: Admission[Any],
    *,
    billing: bool = True,
    protocol: WireProtocol = REALTIME,
    webrtc: bool = False,
) -> tuple[Meter, Session]:
    """The protocol's meter and the session core for an admitted session (or call): the
    same metering, budget and timing rules whichever transport carries it. Without
    ``billing`` the meter counts but writes no row, adds no spend and leaves the budget
    alone."""
    meter = make_meter(
        protocol,
        session_id=admission.session_id,
        model=admission.model or "",
        key_id=admission.key_id,
        prices=parts.prices,
        writer=parts.writer if billing else None,
        spend=parts.spend if billing else None,
        observe=metrics.observe_metered if billing else None,
        webrtc=webrtc,
    )
    key = admission.key
    screen = None
    if admission.model == "" and key is not None and key.models is not None:
        # A transcription session: its model arrives in the session config.
        screen = transcription_screen(lambda model: parts.gate.check_model(key, model))
    session = Session(
        meter=meter,
        timeouts=settings.timeouts,
        budget=key.budget_usd if key is not None and billing else None,
        on_spent=settings.limits.on_budget_spent,
        started=time.monotonic(),
        protocol=protocol,
        screen=screen,
    )
    return meter, session


def start_row(
    admission: Admission[Any],
    hello: ClientHello,
    channel: str,
    node: str,
    attempts: Sequence[Attempt],
    transport: Transport = "websocket",
) -> SessionStart:
    """The session-start row of an admitted session or call (``ledger/records.py`` says what
    it holds)."""
    return SessionStart(
        session_id=admission.session_id,
        key_id=admission.key_id,
        key_prefix=admission.key_prefix,
        model=admission.model or "",
        channel=channel,
        started_at=datetime.now(UTC),
        shape="beta" if hello.beta else "ga",
        origin=hello.origin,
        request_id=hello.request_id,
        node=node,
        channels_tried=attempts_of(attempts),
        transport=transport,
    )


def attempts_of(attempts: Sequence[Attempt]) -> tuple[ChannelAttempt, ...]:
    """Dial attempts as the ledger records them."""
    return tuple(
        ChannelAttempt(channel=a.channel, outcome=a.outcome, detail=f"{a.seconds * 1000:.1f} ms")
        for a in attempts
    )
