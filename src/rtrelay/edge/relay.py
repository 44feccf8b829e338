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
from typing import Any

from aiohttp import web

from rtrelay.bridge.metering import SessionMeter
from rtrelay.bridge.pump import Bridge, ClientLeg, Ending
from rtrelay.config import Settings
from rtrelay.edge.handshake import ClientHello, new_request_id, parse_hello
from rtrelay.edge.refuse import refuse
from rtrelay.edge.wiring import Parts
from rtrelay.errors import (
    IdleTimeout,
    RelayError,
    RelayShuttingDown,
    SessionExpired,
    UpgradeRequired,
)
from rtrelay.gate.admission import Admission, Gate
from rtrelay.ledger.records import ChannelAttempt, Refusal, SessionEnd, SessionStart
from rtrelay.log import edge_log
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
    sessions: dict[str, SessionInfo] = field(default_factory=dict)
    draining: bool = False
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def gate(self) -> Gate:
        return self.parts.gate

    def live_sessions(self) -> list[dict[str, Any]]:
        return [info.describe() for info in self.sessions.values()]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        hello = parse_hello(
            request.headers,
            request.query,
            request_id=new_request_id(),
            handshake_errors=self.settings.server.handshake_errors,
        )
        if request.headers.get("Upgrade", "").lower() != "websocket":
            hello = replace(hello, error_style="http")
            return await self._refuse(request, hello, UpgradeRequired(), None)
        admission: Admission | None = None
        try:
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
            if isinstance(exc, RoutingFailed):
                return await self._refuse(request, hello, exc.error, admission, exc.attempts)
            return await self._refuse(request, hello, exc, admission)
        except BaseException:
            if admission is not None:
                await self.gate.release(admission)
            raise
        return await self._run_session(request, hello, admission, connected)

    async def _refuse(
        self,
        request: web.Request,
        hello: ClientHello,
        error: RelayError,
        admission: Admission | None,
        attempts: tuple[Attempt, ...] = (),
    ) -> web.StreamResponse:
        event_style = hello.error_style == "event"
        self.parts.writer.submit(
            Refusal(
                request_id=hello.request_id,
                error_code=error.code,
                http_status=None if event_style else error.http_status,
                close_code=error.close_code if event_style else None,
                at=datetime.now(UTC),
                key_id=admission.key_id if admission else None,
                key_prefix=admission.key_prefix if admission else None,
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
                "model": hello.model,
                "key_prefix": admission.key_prefix if admission else None,
            },
        )
        return await refuse(request, hello, error)

    async def _run_session(
        self,
        request: web.Request,
        hello: ClientHello,
        admission: Admission,
        connected: Connected,
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


def _is_failure(ending: Ending | None) -> bool:
    if ending is None:
        return True  # the handler itself failed
    return ending.error is not None and not isinstance(ending.error, _NORMAL_ENDINGS)


def _attempts(attempts: tuple[Attempt, ...] | list[Attempt]) -> tuple[ChannelAttempt, ...]:
    return tuple(
        ChannelAttempt(channel=a.channel, outcome=a.outcome, detail=f"{a.seconds * 1000:.1f} ms")
        for a in attempts
    )
