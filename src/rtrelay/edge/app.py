"""The aiohttp application: routes, and the resources each worker owns.

``create_app`` builds the resources first (store, ledger writer, limiters,
simulated providers for ``mock`` channels, the upstream dialer) so that the
admin sub-app can be given the store, and closes them on cleanup in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from aiohttp import web

from rtrelay import wire
from rtrelay.admin.app import create_admin_app
from rtrelay.admin.state import OPENAPI
from rtrelay.config import Channel, Settings
from rtrelay.console import mount_console
from rtrelay.edge.calls import CallDesk
from rtrelay.edge.client_secrets import mint_handler
from rtrelay.edge.live import handle_live
from rtrelay.edge.relay import Relay
from rtrelay.edge.wiring import Closer, build_parts, close_all
from rtrelay.log import edge_log
from rtrelay.observe.metrics import CONTENT_TYPE_LATEST
from rtrelay.route.breaker import BreakerPolicy
from rtrelay.route.calls import LIVE_SESSIONS, CallDialer
from rtrelay.route.dial import Dialer
from rtrelay.route.router import Router
from rtrelay.route.status import channel_status
from rtrelay.tasks import cancel_and_wait

__all__ = ["CALLS", "REALTIME_PATHS", "RELAY", "create_app", "readiness"]

RELAY: Final = web.AppKey("rtrelay.relay", Relay)
CALLS: Final = web.AppKey("rtrelay.calls", CallDesk)

REALTIME_PATHS: Final = (
    wire.OPENAI_PATH,
    wire.REALTIME_PATH_SUFFIX,  # a bare /realtime, for clients configured with a host only
    wire.AZURE_V1_PATH,
    wire.AZURE_PREVIEW_PATH,  # Azure preview: ?deployment=M&api-version=V
)


async def create_app(
    settings: Settings, *, environ: Mapping[str, str] | None = None
) -> web.Application:
    env = os.environ if environ is None else environ
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
        b = settings.breaker
        policy = BreakerPolicy(
            failure_threshold=b.failure_threshold,
            base_cooldown=b.base_cooldown,
            max_cooldown=b.max_cooldown,
        )
        router = Router(channels, dialer, policy=policy, environ=env)
        relay = Relay(settings=settings, parts=parts, router=router)
        desk = await _call_desk(relay, closers)
    except BaseException:
        await close_all(closers)
        raise

    app = web.Application(client_max_size=1024 * 1024)
    app[RELAY] = relay
    app[CALLS] = desk

    async def cleanup(app: web.Application) -> None:
        await close_all(closers)

    app.on_cleanup.append(cleanup)
    app.cleanup_ctx.append(_metrics_flusher)
    for path in REALTIME_PATHS:
        app.router.add_get(path, _realtime)
    app.router.add_get(wire.LIVE_SESSIONS_PATH, _live)
    app.router.add_get(wire.TRANSLATIONS_PATH, _translation)
    app.router.add_post(wire.CALLS_PATH, _create_call)
    app.router.add_route("OPTIONS", wire.CALLS_PATH, _call_preflight)
    app.router.add_post(wire.CALLS_PATH + "/{call_id}/{control}", _call_control)
    app.router.add_route("OPTIONS", wire.CALLS_PATH + "/{call_id}/{control}", _call_preflight)
    live_session = wire.LIVE_SESSIONS_PATH + "/{call_id}"
    app.router.add_post(wire.LIVE_SESSIONS_PATH, _create_live)
    app.router.add_route("OPTIONS", wire.LIVE_SESSIONS_PATH, _call_preflight)
    app.router.add_get(live_session + wire.LIVE_ATTACH_SUFFIX, _live_attach)
    app.router.add_get(live_session + wire.LIVE_CONTENT_SUFFIX, _live_content)
    app.router.add_post(live_session + "/{control}", _live_control)
    app.router.add_route("OPTIONS", live_session + "/{control}", _call_preflight)
    app.router.add_post("/v1/realtime/client_secrets", mint_handler(_relay_of, shape="ga"))
    app.router.add_post("/v1/realtime/sessions", mint_handler(_relay_of, shape="beta"))
    app.router.add_post(wire.TRANSLATION_SECRETS_PATH, mint_handler(_relay_of, shape="translation"))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    admin_token = env.get(settings.admin.token_env) or None
    admin = _admin_app(relay, desk, admin_token)
    mount_console(  # /console (same token), / and /admin/v1/docs
        app, relay, token=admin_token, openapi=admin[OPENAPI], readiness=lambda: readiness(relay)
    )
    app.add_subapp("/admin/v1", admin)
    return app


async def _call_desk(relay: Relay, closers: list[Closer]) -> CallDesk:
    """WebRTC call setup; calls a previous run of this node left live are hung up first."""
    dialer = CallDialer(relay.router)
    await dialer.start()
    closers.append(dialer.close)
    desk = CallDesk(relay, dialer)
    relay.calls = dialer  # app servers' sidebands (?call_id=) are dialed with it
    closers.append(desk.close)  # before the dialers and the ledger: calls hang up, settle
    try:
        await desk.recover()
    except Exception:  # the store is down: the calls' own hangups are what is left
        edge_log.warning("left-over calls not checked", exc_info=True)
    return desk


def _admin_app(relay: Relay, desk: CallDesk, token: str | None) -> web.Application:
    def live_sessions() -> list[dict[str, Any]]:
        return relay.live_sessions() + desk.live()  # WebSocket sessions, then WebRTC calls

    admin = create_admin_app(relay.parts.store, token=token, live_sessions=live_sessions)

    async def channels(request: web.Request) -> web.Response:
        return web.json_response({"data": channel_status(relay.router)})

    admin.router.add_get("/channels", channels)
    admin[OPENAPI]["paths"]["/channels"] = _CHANNELS_OPENAPI
    return admin


_CHANNELS_OPENAPI: Final[dict[str, Any]] = {
    "get": {
        "summary": "Upstream channels with circuit state, recent success rate and dial latency",
        "operationId": "listChannels",
        "responses": {
            "200": {
                "description": "One entry per configured channel",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }
}


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
        provider = await stack.enter_async_context(MockProvider(MockOptions(), record=False))
        started.append(dataclasses.replace(channel, base_url=provider.url))
    return tuple(started)


METRICS_FLUSH_SECONDS: Final = 5.0


async def _metrics_flusher(app: web.Application) -> AsyncIterator[None]:
    """Fold live sessions' counters into the metrics now and then (never per frame)."""
    relay = app[RELAY]

    async def run() -> None:
        while True:
            await asyncio.sleep(METRICS_FLUSH_SECONDS)
            relay.flush_metrics()
            try:
                await relay.refresh_spend()
                await app[CALLS].refresh_spend()
            except Exception:  # the store is down: budgets use what this process knows
                edge_log.warning("spend refresh failed", exc_info=True)

    task = asyncio.create_task(run(), name="rtrelay.metrics-flush")
    yield
    await cancel_and_wait(task)


async def _metrics(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    relay.flush_metrics()
    body = relay.metrics.exposition()
    headers = {"Content-Type": CONTENT_TYPE_LATEST, "X-Rtrelay-Worker": str(os.getpid())}
    return web.Response(body=body, headers=headers)


async def _create_call(request: web.Request) -> web.Response:
    return await request.app[CALLS].create(request)


async def _call_control(request: web.Request) -> web.Response:
    return await request.app[CALLS].control(request)


async def _create_live(request: web.Request) -> web.Response:
    return await request.app[CALLS].create(request, LIVE_SESSIONS)


async def _live_control(request: web.Request) -> web.Response:
    return await request.app[CALLS].control(request, LIVE_SESSIONS)


async def _live_content(request: web.Request) -> web.StreamResponse:
    return await request.app[CALLS].content(request)


async def _live_attach(request: web.Request) -> web.StreamResponse:
    return await request.app[RELAY].handle_live_attach(request)


async def _call_preflight(request: web.Request) -> web.Response:
    return await request.app[CALLS].preflight(request)


def _relay_of(request: web.Request) -> Relay:
    return request.app[RELAY]


async def _realtime(request: web.Request) -> web.StreamResponse:
    return await request.app[RELAY].handle(request)


async def _live(request: web.Request) -> web.StreamResponse:
    return await handle_live(request.app[RELAY], request)


async def _translation(request: web.Request) -> web.StreamResponse:
    return await request.app[RELAY].handle_translation(request)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    body = await readiness(request.app[RELAY])
    return web.json_response(body, status=503 if body["problems"] else 200)


async def readiness(relay: Relay) -> dict[str, Any]:
    """``/readyz``'s answer (the landing page shows it too): problems, and notes."""
    problems: list[str] = []
    if relay.draining:
        problems.append("draining")
    if not any(b.state.value == "closed" for b in relay.router.breakers.values()):
        problems.append("no channel with a closed circuit")
    try:
        await relay.parts.store.ping()
    except Exception as exc:
        problems.append(f"store unreachable: {type(exc).__name__}")
    notes: list[str] = []
    limits = relay.parts.limits
    if limits is not None and (why := await limits.check()) is not None:
        if limits.on_error == "closed":  # keys with limits are refused: not ready
            problems.append(f"redis unreachable: {why}")
        else:
            notes.append(f"redis unreachable: {why}; admitting on this process's own limits")
    body: dict[str, Any] = {"status": "not ready" if problems else "ready", "problems": problems}
    if notes:
        body["notes"] = notes
    return body
