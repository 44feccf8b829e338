"""The relay's per-process state and the WebSocket handler that ties the flow together.

edge (parse the upgrade) → gate (admit) → route (dial, failover) → only then
accept the client → bridge (pump until either side ends) → settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from rtrelay.bridge.metering import SessionMeter
from rtrelay.bridge.pump import Bridge, ClientLeg, Ending
from rtrelay.config import Settings
from rtrelay.edge.handshake import ClientHello, new_request_id, parse_hello
from rtrelay.edge.refuse import refuse
from rtrelay.edge.server import client_watch
from rtrelay.edge.wiring import Parts
from rtrelay.errors import (
    ClientGone,
    IdleTimeout,
    InternalError,
    MalformedRequest,
    RelayError,
    RelayShuttingDown,
    SessionExpired,
    UpgradeRequired,
)
from rtrelay.gate.admission import Admission, Gate, KeyInfo
from rtrelay.ledger.prices import Usage
from rtrelay.ledger.records import ChannelAttempt, Refusal, SessionEnd, SessionStart, clip
from rtrelay.log import edge_log
from rtrelay.observe.metrics import CIRCUIT_STATES, Metrics
from rtrelay.route.router import Attempt, Connected, Router, RoutingFailed

__all__ = ["Relay", "SessionInfo"]


@dataclass(slots=True)
class SessionInfo:
    """A live session, as the admin API and logs describe it."""

    session_id: str
    request_id: str
    key_prefix: str | None
    model: str
    channel: str
    started: float
    bridge: Bridge
    meter: SessionMeter
    flushed: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    """Frames/bytes each way already added to the metrics."""

    def describe(self) -> dict[str, Any]:
        c = self.bridge.counters
        return {
            "id": self.session_id,
            "request_id": self.request_id,
            "key_prefix": self.key_prefix,
            "model": self.model,
            "channel": self.channel,
            "age_seconds": round(time.monotonic() - self.started, 3),
            "frames_in": c.frames_in,
            "frames_out": c.frames_out,
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "responses": self.meter.usage.responses,
            "cost_usd": str(self.meter.usage.cost_usd),
        }


@dataclass(slots=True)
class Relay:
    settings: Settings
    parts: Parts
    router: Router
    metrics: Metrics = field(default_factory=Metrics)
    sessions: dict[str, SessionInfo] = field(default_factory=dict)
    draining: bool = False
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def gate(self) -> Gate:
        return self.parts.gate

    def live_sessions(self) -> list[dict[str, Any]]:
        return [info.describe() for info in self.sessions.values()]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        hello = parse_hello(
            request.headers,
            request.query,
            request_id=new_request_id(),
            handshake_errors=self.settings.server.handshake_errors,
        )
        if request.headers.get("Upgrade", "").lower() != "websocket":
            hello = replace(hello, error_style="http")
            return await self._refuse(request, hello, UpgradeRequired(), None)
        if not ClientLeg().can_prepare(request):
            # A bad Sec-WebSocket-Key, version or Connection: say so now, not after a dial.
            hello = replace(hello, error_style="http")
            return await self._refuse(request, hello, MalformedRequest(_BAD_UPGRADE), None)
        admission: Admission | None = None
        key: KeyInfo | None = None
        try:
            async with client_watch(request):  # a client that hangs up: cancel, ClientGone
                if self.draining:
                    raise RelayShuttingDown(retry_after=1)
                key, bound_model = await self.gate.authenticate(hello.credential)
                model = hello.require_model()
                self.gate.check_policy(key, model, hello.origin, bound_model)
                self.router.candidates(model, beta=hello.beta)  # 404 before any lease is taken
                admission = await self.gate.admit_session(key, model)
                t = self.settings.timeouts
                connected = await self.router.connect(
                    model,
                    beta=hello.beta,
                    request_id=hello.request_id,
                    dial_timeout=t.dial,
                    deadline=t.handshake_deadline,
                )
        except (RelayError, RoutingFailed) as exc:
            if admission is not None:
                await self.gate.release(admission)
            if isinstance(exc, ClientGone):
                hello = replace(hello, error_style="http")  # nobody is left to read an event
            if isinstance(exc, RoutingFailed):
                self._observe_attempts(exc.attempts)
                return await self._refuse(request, hello, exc.error, key, exc.attempts)
            return await self._refuse(request, hello, exc, key)
        except Exception:
            # A dependency failed (store, Redis) or a bug: log it, explain it generically.
            edge_log.exception(
                "handshake failed", extra={"event": "error", "request_id": hello.request_id}
            )
            if admission is not None:
                with contextlib.suppress(Exception):
                    await self.gate.release(admission)
            return await self._refuse(request, hello, InternalError(), key)
        except BaseException:
            if admission is not None:
                await self.gate.release(admission)
            raise
        self._observe_attempts(connected.attempts)
        return await self._run_session(request, hello, admission, connected, arrived)

    async def _refuse(
        self,
        request: web.Request,
        hello: ClientHello,
        error: RelayError,
        key: KeyInfo | None,
        attempts: tuple[Attempt, ...] = (),
    ) -> web.StreamResponse:
        event_style = hello.error_style == "event"
        self.metrics.handshakes.labels(error.code).inc()
        if error.code == "insufficient_quota":
            self.metrics.budget_refusals.labels("connect").inc()
        self.parts.writer.submit(
            Refusal(
                request_id=hello.request_id,
                error_code=error.code,
                http_status=None if event_style else error.http_status,
                close_code=error.close_code if event_style else None,
                at=datetime.now(UTC),
                key_id=key.id if key else None,
                key_prefix=key.prefix if key else None,
                model=hello.model,
                origin=hello.origin,
                channels_tried=_attempts(attempts),
            )
        )
        edge_log.info(
            "session refused",
            extra={
                "event": "refused",
                "request_id": hello.request_id,
                "code": error.code,
                "status": error.http_status,
                "close_code": error.close_code if event_style else None,
                "model": clip(hello.model, "model"),  # a client may send 8 KB of "model"
                "key_prefix": key.prefix if key else None,
            },
        )
        return await refuse(request, hello, error)

    async def _run_session(
        self,
        request: web.Request,
        hello: ClientHello,
        admission: Admission,
        connected: Connected,
        arrived: float,
    ) -> web.StreamResponse:
        s = self.settings
        ws = ClientLeg(
            protocols=(hello.echo_protocol,) if hello.echo_protocol else (),
            compress=False,
            max_msg_size=s.limits.max_frame_bytes,
            autoclose=False,
            autoping=True,
            heartbeat=s.timeouts.heartbeat,
            decode_text=False,
            timeout=5.0,
        )
        ws.headers["X-Request-Id"] = hello.request_id
        key = admission.key
        meter = SessionMeter(
            session_id=admission.session_id,
            model=admission.model,
            key_id=admission.key_id,
            budget_usd=key.budget_usd if key is not None else None,
            prices=self.parts.prices,
            writer=self.parts.writer,
            spend=self.parts.spend,
            on_spent=s.limits.on_budget_spent,
            observe=self._observe_usage,
        )
        bridge = Bridge(
            client=ws,
            upstream=connected.ws,
            client_transport=request.transport,
            timeouts=s.timeouts,
            meter=meter,
        )
        info = SessionInfo(
            session_id=admission.session_id,
            request_id=hello.request_id,
            key_prefix=admission.key_prefix,
            model=admission.model,
            channel=connected.channel.name,
            started=time.monotonic(),
            bridge=bridge,
            meter=meter,
        )
        self.sessions[info.session_id] = info
        self._idle.clear()
        ending: Ending | None = None
        self.parts.writer.submit(
            SessionStart(
                session_id=info.session_id,
                key_id=admission.key_id,
                key_prefix=admission.key_prefix,
                model=info.model,
                channel=info.channel,
                started_at=datetime.now(UTC),
                shape="beta" if hello.beta else "ga",
                origin=hello.origin,
                request_id=hello.request_id,
                node=self.parts.node,
                channels_tried=_attempts(connected.attempts),
            )
        )
        try:
            await ws.prepare(request)
            self.metrics.handshakes.labels("success").inc()
            self.metrics.active_sessions.inc()
            edge_log.info(
                "session open",
                extra={
                    "event": "session_start",
                    "request_id": hello.request_id,
                    "session_id": info.session_id,
                    "key_prefix": info.key_prefix,
                    "model": info.model,
                    "channel": info.channel,
                    "attempts": [(a.channel, a.outcome) for a in connected.attempts],
                },
            )
            ending = await bridge.run()
        finally:
            if ws.prepared:
                self.metrics.active_sessions.dec()
                if bridge.first_frame_at:
                    self.metrics.first_event.observe(bridge.first_frame_at - arrived)
            del self.sessions[info.session_id]
            if not self.sessions:
                self._idle.set()
            if not connected.ws.closed:
                with contextlib.suppress(Exception):
                    await connected.ws.close()
            await self.gate.release(admission)
            self._settle(info, ending)
        return ws

    def _settle(self, info: SessionInfo, ending: Ending | None) -> None:
        c = info.bridge.counters
        error = ending.error if ending else None
        duration = time.monotonic() - info.started
        self.parts.writer.submit(
            SessionEnd(
                session_id=info.session_id,
                ended_at=datetime.now(UTC),
                status="failed" if _is_failure(ending) else "completed",
                frames_from_client=c.frames_in,
                bytes_from_client=c.bytes_in,
                frames_from_upstream=c.frames_out,
                bytes_from_upstream=c.bytes_out,
                client_close_code=info.bridge.client_close_code,
                upstream_close_code=info.bridge.upstream_close_code,
                error_code=error.code if error else None,
                duration_s=duration,
            )
        )
        self._flush_counters(info)
        m = self.metrics
        m.session_duration.observe(duration)
        if info.bridge.client_close_code is not None:
            m.closes.labels("client", str(info.bridge.client_close_code)).inc()
        if info.bridge.upstream_close_code is not None:
            m.closes.labels("upstream", str(info.bridge.upstream_close_code)).inc()
        if error is not None:
            m.session_errors.labels(error.code).inc()
        if info.meter.refused:
            m.budget_refusals.labels("response.create").inc(info.meter.refused)
        if info.meter.cancelled:
            m.budget_refusals.labels("response.cancelled").inc(info.meter.cancelled)
        usage = info.meter.usage
        edge_log.info(
            "session closed",
            extra={
                "event": "session_end",
                "request_id": info.request_id,
                "session_id": info.session_id,
                "key_prefix": info.key_prefix,
                "model": info.model,
                "channel": info.channel,
                "duration_s": round(duration, 3),
                "frames_in": c.frames_in,
                "frames_out": c.frames_out,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "closed_by": ending.closer if ending else "relay",
                "client_close_code": info.bridge.client_close_code,
                "upstream_close_code": info.bridge.upstream_close_code,
                "error_code": error.code if error else None,
                "responses": usage.responses,
                "tokens_in": usage.tokens_in,
                "tokens_out": usage.tokens_out,
                "cost_usd": str(usage.cost_usd),
            },
        )

    def _observe_attempts(self, attempts: tuple[Attempt, ...] | list[Attempt]) -> None:
        m = self.metrics
        for a in attempts:
            if a.outcome == "ok":
                m.dial_latency.labels(a.channel).observe(a.seconds)
            elif not a.outcome.startswith("skipped"):
                m.dial_failures.labels(a.channel, a.outcome).inc()
            state = self.router.breakers[a.channel].state
            m.circuit_state.labels(a.channel).set(CIRCUIT_STATES[state.value])

    def _observe_usage(self, model: str, usage: Usage, cost: Decimal | None) -> None:
        self.metrics.observe_usage(
            model,
            {
                "text_in": usage.input_text - usage.cached_text,
                "audio_in": usage.input_audio - usage.cached_audio,
                "image_in": usage.input_image - usage.cached_image,
                "cached_in": usage.cached_text + usage.cached_audio + usage.cached_image,
                "text_out": usage.output_text,
                "audio_out": usage.output_audio,
            },
            cost,
        )

    def _flush_counters(self, info: SessionInfo) -> None:
        """Add what a session forwarded since the last flush to the metrics."""
        c = info.bridge.counters
        now = [c.frames_in, c.frames_out, c.bytes_in, c.bytes_out]
        m = self.metrics
        for series, value, before in zip(
            (m.frames_in, m.frames_out, m.bytes_in, m.bytes_out), now, info.flushed, strict=True
        ):
            if value > before:
                series.inc(value - before)
        info.flushed = now
        samples = info.bridge.latency_samples
        if samples:
            for seconds in samples:
                m.added_latency.observe(seconds)
            samples.clear()

    async def refresh_spend(self) -> None:
        """Reload live sessions' key spend from the store, so spend through other relays
        reaches their budget checks (``SpendBook`` caches it for its refresh interval)."""
        keys = {i.meter.key_id for i in self.sessions.values() if i.meter.budget_usd is not None}
        for key_id in keys:
            if key_id is not None:
                await self.parts.spend.spent(key_id)

    def flush_metrics(self) -> None:
        """Fold live sessions' counters and channel states into the metrics."""
        for info in list(self.sessions.values()):
            self._flush_counters(info)
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
        for info in list(self.sessions.values()):
            info.bridge.stop(RelayShuttingDown())
        if self.sessions:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(15.0):
                    await self._idle.wait()


_NORMAL_ENDINGS = (IdleTimeout, SessionExpired, RelayShuttingDown)
_BAD_UPGRADE = (
    "The WebSocket upgrade is invalid: check the Connection, Sec-WebSocket-Key and "
    "Sec-WebSocket-Version headers."
)


def _is_failure(ending: Ending | None) -> bool:
    if ending is None:
        return True  # the handler itself failed
    return ending.error is not None and not isinstance(ending.error, _NORMAL_ENDINGS)


def _attempts(attempts: tuple[Attempt, ...] | list[Attempt]) -> tuple[ChannelAttempt, ...]:
    return tuple(
        ChannelAttempt(channel=a.channel, outcome=a.outcome, detail=f"{a.seconds * 1000:.1f} ms")
        for a in attempts
    )
