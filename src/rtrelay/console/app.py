"""``mount_console``: the console at ``/console``, the landing page at ``/``, the admin
API's reference at ``/admin/v1/docs``, all on the relay's own application.

The console is a sub-application so its guard (sign-in, CSRF, "off") and its
security headers apply to its routes only, never to the relay's hot paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from rtrelay.console import keys, overview, sessions, signin, usage
from rtrelay.console.auth import ConsoleAuth
from rtrelay.console.public import docs_handler, landing_handler
from rtrelay.console.state import CONSOLE, Console
from rtrelay.console.stats import read_sample
from rtrelay.console.templating import PAGE_HEADERS, environment
from rtrelay.tasks import cancel_and_wait

if TYPE_CHECKING:
    from rtrelay.edge.relay import Relay

__all__ = ["STATIC_DIR", "create_console_app", "mount_console"]

STATIC_DIR: Final = Path(__file__).parent / "static"
_log = logging.getLogger("rtrelay.console")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_console_app(
    relay: Relay,
    *,
    token: str | None,
    clock: Callable[[], datetime] = _utcnow,
) -> web.Application:
    """The console over ``relay``, for ``parent.add_subapp("/console", app)``.

    Args:
        token: the admin token (``[admin] token_env``); ``None`` turns the console
            off: every page says so with a 404.
    """
    console = Console(
        relay=relay,
        auth=None if token is None else ConsoleAuth(token),
        templates=environment(),
        token_env=relay.settings.admin.token_env,
        clock=clock,
    )
    app = web.Application(middlewares=[signin.guard])
    app[CONSOLE] = console
    for module in (signin, overview, sessions, keys, usage):
        app.add_routes(module.routes)
    app.router.add_static("/static", STATIC_DIR, name="static")
    if console.auth is not None:
        app.cleanup_ctx.append(_sampler)
    return app


async def _sampler(app: web.Application) -> AsyncIterator[None]:
    """Sample the handshake counters every 10 s for the overview's windows and charts."""
    console = app[CONSOLE]

    async def run() -> None:
        while True:
            try:
                console.history.add(read_sample(console.relay.metrics, time.time()))
            except Exception:  # a metrics file being rewritten: the next sample will do
                _log.warning("console: metrics sample failed", exc_info=True)
            await asyncio.sleep(console.history.step)

    console.started = time.time()
    task = asyncio.create_task(run(), name="rtrelay.console-sampler")
    yield
    await cancel_and_wait(task)


async def _to_console(request: web.Request) -> web.StreamResponse:
    return web.Response(status=308, headers={**PAGE_HEADERS, "Location": "/console/"})


def mount_console(
    app: web.Application,
    relay: Relay,
    *,
    token: str | None,
    openapi: dict[str, Any],
    readiness: Callable[[], Awaitable[dict[str, Any]]],
) -> None:
    """Add the console, ``/`` and ``/admin/v1/docs`` to the relay's ``app``.

    Call it before ``app.add_subapp("/admin/v1", ...)``'s app starts; ``openapi`` is the
    admin app's document (read at each request, so routes described later show).
    """
    console = create_console_app(relay, token=token)
    templates = console[CONSOLE].templates
    app.router.add_get(
        "/",
        landing_handler(
            templates,
            readiness,
            console_on=token is not None,
            live_sessions=lambda: len(relay.sessions),
            channels=lambda: len(relay.router.channels),
        ),
    )
    docs = docs_handler(templates, openapi, admin_on=token is not None)
    app.router.add_get("/admin/v1/docs", docs)
    app.router.add_get("/console", _to_console)
    app.add_subapp("/console", console)
