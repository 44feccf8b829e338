"""The aiohttp application: routes, and the resources each worker owns.

Resources are built and closed in one ``cleanup_ctx`` generator, in dependency
order (store → limits → dialer → router → gate), as aiohttp's docs advise.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Final

from aiohttp import web

from rtrelay.config import Settings
from rtrelay.edge.relay import Relay
from rtrelay.route.dial import Dialer
from rtrelay.route.router import Router

__all__ = ["REALTIME_PATHS", "RELAY", "create_app"]

RELAY: Final = web.AppKey("rtrelay.relay", Relay)

REALTIME_PATHS: Final = (
    "/v1/realtime",
    "/realtime",
    "/openai/v1/realtime",
    "/openai/realtime",  # Azure preview: ?deployment=M&api-version=V
)


def create_app(settings: Settings, *, environ: Mapping[str, str] | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    env = os.environ if environ is None else environ

    async def resources(app: web.Application) -> AsyncIterator[None]:
        from rtrelay.edge.wiring import build_gate, close_all

        dialer = Dialer(
            max_frame_bytes=settings.limits.max_frame_bytes,
            heartbeat=settings.timeouts.heartbeat,
        )
        await dialer.start()
        gate, closers = await build_gate(settings, env)
        try:
            router = Router(settings.channels, dialer, environ=env)
            app[RELAY] = Relay(settings=settings, gate=gate, router=router)
            yield
        finally:
            await close_all(closers)
            await dialer.close()

    app.cleanup_ctx.append(resources)
    for path in REALTIME_PATHS:
        app.router.add_get(path, _realtime)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


async def _realtime(request: web.Request) -> web.StreamResponse:
    return await request.app[RELAY].handle(request)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    problems: list[str] = []
    if relay.draining:
        problems.append("draining")
    states = [b.state.value for b in relay.router.breakers.values()]
    if not any(s == "closed" for s in states):
        problems.append("no channel with a closed circuit")
    status = 503 if problems else 200
    return web.json_response(
        {"status": "ready" if not problems else "not ready", "problems": problems},
        status=status,
    )
