"""The relay's per-process state and the WebSocket handler that ties the flow together.

edge (parse the upgrade) → gate (admit) → route (dial, failover) → only then
accept the client → bridge (pump until either side ends) → settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from rtrelay.bridge.pump import Bridge, ClientLeg, Ending, Meter, NullMeter
from rtrelay.config import Settings
from rtrelay.edge.handshake import ClientHello, new_request_id, parse_hello
from rtrelay.edge.refuse import refuse
from rtrelay.errors import RelayError, RelayShuttingDown, UpgradeRequired
from rtrelay.gate.admission import Admission, Gate
from rtrelay.log import edge_log
from rtrelay.route.router import Connected, Router

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
        }


@dataclass(slots=True)
class Relay:
    settings: Settings
    gate: Gate
    router: Router
    sessions: dict[str, SessionInfo] = field(default_factory=dict)
    draining: bool = False
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def meter_for(self, admission: Admission, connected: Connected) -> Meter:
        """The per-session tap consumer (overridden when metering is wired in)."""
        return NullMeter()

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
        except RelayError as error:
            if admission is not None:
                await self.gate.release(admission)
            return await self._refuse(request, hello, error, admission)
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
    ) -> web.StreamResponse:
        edge_log.info(
            "session refused",
            extra={
                "event": "refused",
                "request_id": hello.request_id,
                "code": error.code,
                "status": error.http_status,
                "close_code": error.close_code if hello.error_style == "event" else None,
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
        bridge = Bridge(
            client=ws,
            upstream=connected.ws,
            client_transport=request.transport,
            timeouts=s.timeouts,
            meter=self.meter_for(admission, connected),
        )
        info = SessionInfo(
            session_id=admission.session_id,
            request_id=hello.request_id,
            key_prefix=admission.key_prefix,
            model=admission.model,
            channel=connected.channel.name,
            started=time.monotonic(),
            bridge=bridge,
        )
        self.sessions[info.session_id] = info
        self._idle.clear()
        ending: Ending | None = None
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
            self._log_end(info, ending)
        return ws

    def _log_end(self, info: SessionInfo, ending: Ending | None) -> None:
        c = info.bridge.counters
        edge_log.info(
            "session closed",
            extra={
                "event": "session_end",
                "request_id": info.request_id,
                "session_id": info.session_id,
                "key_prefix": info.key_prefix,
                "model": info.model,
                "channel": info.channel,
                "duration_s": round(time.monotonic() - info.started, 3),
                "frames_in": c.frames_in,
                "frames_out": c.frames_out,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "closed_by": ending.closer if ending else "relay",
                "client_close_code": info.bridge.client_close_code,
                "upstream_close_code": info.bridge.upstream_close_code,
                "error_code": ending.error.code if ending and ending.error else None,
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
