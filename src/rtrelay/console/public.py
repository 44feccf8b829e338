"""The pages anyone may open: ``/`` (what this is, its status, where to go) and
``/admin/v1/docs`` (the admin API's reference, Swagger UI over its OpenAPI document).

Neither shows anything the admin token protects: the landing page gives the relay's
readiness (what ``/readyz`` says to anyone) and counts; the reference embeds the
OpenAPI document, a description of the routes, and calling them still needs the token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import jinja2
from aiohttp import web

from rtrelay import __version__
from rtrelay.console.state import STATIC_PREFIX
from rtrelay.console.templating import PAGE_HEADERS, render

__all__ = ["DOCS_HEADERS", "docs_handler", "landing_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DOCS_HEADERS: Final = {
    **PAGE_HEADERS,
    # Swagger UI (React) writes style attributes into its markup: allow those, nothing else.
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"].replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'"
    ),
}


def landing_handler(
    templates: jinja2.Environment,
    readiness: Callable[[], Awaitable[dict[str, Any]]],
    *,
    console_on: bool,
    live_sessions: Callable[[], int],
    channels: Callable[[], int],
) -> Handler:
    """``GET /``: a small page saying what this server is and whether it is ready."""

    async def landing(request: web.Request) -> web.StreamResponse:
        ready = await readiness()
        return render(
            templates,
            "landing.html",
            {
                "static": STATIC_PREFIX,
                "version": __version__,
                "ready": ready,
                "console_on": console_on,
                "live": live_sessions(),
                "channels": channels(),
                "base": f"{request.scheme}://{request.host}",
            },
        )

    return landing


def docs_handler(
    templates: jinja2.Environment, openapi: dict[str, Any], *, admin_on: bool
) -> Handler:
    """``GET /admin/v1/docs``: Swagger UI, vendored, over the document ``openapi.json`` serves."""

    async def docs(request: web.Request) -> web.StreamResponse:
        return render(
            templates,
            "docs.html",
            {"static": STATIC_PREFIX, "spec": openapi, "admin_on": admin_on},
            headers=DOCS_HEADERS,
        )

    return docs
