"""What the console's handlers share: the relay they look at, sign-in, templates, history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import jinja2
from aiohttp import web

from rtrelay.cache import LoadingCache
from rtrelay.console.auth import ConsoleAuth, Signin, WrongTokenThrottle
from rtrelay.console.stats import History
from rtrelay.console.templating import render

if TYPE_CHECKING:
    from rtrelay.edge.relay import Relay

__all__ = [
    "CONSOLE",
    "SPEND_TTL",
    "STATIC_PREFIX",
    "Console",
    "error_page",
    "page",
    "set_signin",
    "signin_of",
]

STATIC_PREFIX: Final = "/console/static"
SPEND_TTL: Final = 5.0
"""Seconds the overview's spend figures are reused (one refresh of the page): however
many overviews are open, the store sees one spend query per process that often."""


@dataclass(slots=True)
class Console:
    relay: Relay
    auth: ConsoleAuth | None
    """``None``: no admin token is configured, the console is off."""
    templates: jinja2.Environment
    token_env: str
    clock: Callable[[], datetime]
    history: History = field(default_factory=History)
    throttle: WrongTokenThrottle = field(default_factory=WrongTokenThrottle)
    spend: LoadingCache[str, tuple[Decimal, Decimal]] = field(
        default_factory=lambda: LoadingCache(SPEND_TTL)
    )
    started: float = 0.0
    """Unix time the console started sampling (the 24-hour figures' real start)."""


CONSOLE: Final = web.AppKey("rtrelay.console", Console)
_SIGNIN: Final = web.RequestKey("rtrelay.console.signin", Signin)


def signin_of(request: web.Request) -> Signin:
    """The session the guard middleware verified for this request."""
    signin: Signin = request[_SIGNIN]
    return signin


def set_signin(request: web.Request, signin: Signin) -> None:
    request[_SIGNIN] = signin


def page(
    request: web.Request,
    name: str,
    nav: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    """A signed-in page: ``context`` plus what the layout needs (nav, CSRF token)."""
    console = request.app[CONSOLE]
    assert console.auth is not None  # the guard answers for a console that is off
    csrf = console.auth.csrf_token(signin_of(request).session_id)
    return render(
        console.templates,
        name,
        {"nav": nav, "csrf": csrf, "static": STATIC_PREFIX, **context},
        status=status,
    )


def error_page(
    request: web.Request, nav: str, title: str, message: str, *, status: int
) -> web.Response:
    """A signed-in page that says what went wrong (no such key, not live here...)."""
    return page(request, "error.html", nav, {"title": title, "message": message}, status=status)
