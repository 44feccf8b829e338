"""The aiohttp application: routes, and the resources each worker owns.

Resources are built and closed in one ``cleanup_ctx`` generator, in dependency
order, as aiohttp's docs advise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Mapping
from typing import Final

from aiohttp import web

from rtrelay.config import Channel, Settings
from rtrelay.edge.client_secrets import mint_handler
from rtrelay.edge.relay import Relay
from rtrelay.edge.wiring import Closer, build_parts, close_all
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
        parts = await build_parts(settings, env)
        closers = parts.closers
        try:
            channels = await _start_mock_channels(settings.channels, closers)
            dialer = Dialer(
                max_frame_bytes=settings.limits.max_frame_bytes,
                heartbeat=settings.timeouts.heartbeat,
            )
            await dialer.start()
            closers.append(dialer.close)
            router = Router(channels, dialer, environ=env)
            app[RELAY] = Relay(settings=settings, parts=parts, router=router)
            yield
        finally:
            await close_all(closers)

    app.cleanup_ctx.append(resources)
    for path in REALTIME_PATHS:
        app.router.add_get(path, _realtime)
    relay_of = _relay_of
    app.router.add_post("/v1/realtime/client_secrets", mint_handler(relay_of, beta=False))
    app.router.add_post("/v1/realtime/sessions", mint_handler(relay_of, beta=True))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


async def _start_mock_channels(
    channels: tuple[Channel, ...], closers: list[Closer]
) -> tuple[Channel, ...]:
    """Run an in-process simulated provider for each ``kind = "mock"`` channel."""
    if not any(c.kind == "mock" for c in channels):
        return channels
    from rtrelay.mock import MockOptions, MockProvider

    stack = contextlib.AsyncExitStack()
    closers.append(stack.aclose)
    started: list[Channel] = []
    for channel in channels:
        if channel.kind != "mock":
            started.append(channel)
            continue
        provider = await stack.enter_async_context(MockProvider(MockOptions()))
        started.append(dataclasses.replace(channel, base_url=provider.url))
    return tuple(started)


def _relay_of(request: web.Request) -> Relay:
    return request.app[RELAY]


async def _realtime(request: web.Request) -> web.StreamResponse:
    return await request.app[RELAY].handle(request)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    problems: list[str] = []
    if relay.draining:
        problems.append("draining")
    if not any(b.state.value == "closed" for b in relay.router.breakers.values()):
        problems.append("no channel with a closed circuit")
    try:
        await relay.parts.store.ping()
    except Exception as exc:
        problems.append(f"store unreachable: {type(exc).__name__}")
    return web.json_response(
        {"status": "not ready" if problems else "ready", "problems": problems},
        status=503 if problems else 200,
    )
