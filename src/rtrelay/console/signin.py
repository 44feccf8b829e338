"""The console's guard (sign-in, CSRF, the console being off) and its login/logout routes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlencode

from aiohttp import web

from rtrelay.console.auth import LOGIN_COOKIE, SESSION_COOKIE, SESSION_LIFETIME, ConsoleAuth
from rtrelay.console.state import CONSOLE, STATIC_PREFIX, set_signin, signin_of
from rtrelay.console.templating import PAGE_HEADERS, render

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "guard", "routes", "see_other"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
"""How htmx requests carry the token (``hx-headers`` on the page's body)."""
_PUBLIC_ROUTES: Final = frozenset({"login", "login_post"})
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})

routes: Final = web.RouteTableDef()
_log = logging.getLogger("rtrelay.console")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every console route but the static files and the login form needs a signed-in
    session; every POST needs its CSRF token; with no admin token the console is off."""
    if request.path.startswith(STATIC_PREFIX + "/"):
        response = await handler(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
        return response
    console = request.app[CONSOLE]
    auth = console.auth
    if auth is None:
        return render(
            console.templates,
            "off.html",
            {"token_env": console.token_env, "static": STATIC_PREFIX},
            status=404,
        )
    name = request.match_info.route.name
    if name in _PUBLIC_ROUTES:
        return await handler(request)
    signin = auth.verify(request.cookies.get(SESSION_COOKIE))
    if signin is None:
        return _to_login(request)
    set_signin(request, signin)
    if request.method not in _SAFE_METHODS and not await _csrf_ok(request, auth):
        return render(
            console.templates,
            "error.html",
            {
                "static": STATIC_PREFIX,
                "title": "Request refused",
                "message": "The form's CSRF token is missing or wrong: reload the page and "
                "try again.",
            },
            status=403,
        )
    return await handler(request)


async def _csrf_ok(request: web.Request, auth: ConsoleAuth) -> bool:
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        field = (await request.post()).get(CSRF_FIELD)
        presented = field if isinstance(field, str) else None
    return auth.csrf_ok(signin_of(request).session_id, presented)


def _to_login(request: web.Request) -> web.Response:
    """Not signed in: browsers go to the login page; an htmx poll is told to go there."""
    target = "/console/login"
    if request.method in _SAFE_METHODS and not request.headers.get("HX-Request"):
        return see_other(target + "?" + urlencode({"next": request.path_qs}))
    return web.Response(status=401, headers={**PAGE_HEADERS, "HX-Redirect": target})


def see_other(location: str) -> web.Response:
    """A 303 to ``location`` (after a POST: the browser GETs it)."""
    return web.Response(status=303, headers={**PAGE_HEADERS, "Location": location})


def _safe_next(value: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site)."""
    if not value or not value.startswith("/console/") or any(c in value for c in "\\\r\n"):
        return "/console/"
    return value


def _login_page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    console = request.app[CONSOLE]
    assert console.auth is not None
    nonce = console.auth.login_nonce()
    response = render(
        console.templates,
        "login.html",
        {
            "static": STATIC_PREFIX,
            "csrf": console.auth.login_csrf(nonce),
            "next": _safe_next(request.query.get("next")),
            "error": error,
            "signed_out": "signed_out" in request.query,
        },
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=600,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


@routes.get("/login", name="login")
async def login_form(request: web.Request) -> web.StreamResponse:
    auth = request.app[CONSOLE].auth
    assert auth is not None
    if auth.verify(request.cookies.get(SESSION_COOKIE)) is not None:
        return see_other(_safe_next(request.query.get("next")))
    return _login_page(request)


@routes.post("/login", name="login_post")
async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    auth = console.auth
    assert auth is not None
    peer = request.remote or "?"
    if console.throttle.blocked(peer):
        return _login_page(
            request, error="Too many wrong tokens: wait a minute and try again.", status=429
        )
    form = await request.post()
    csrf, token = form.get(CSRF_FIELD), form.get("token")
    if not auth.login_csrf_ok(request.cookies.get(LOGIN_COOKIE), _text(csrf)):
        return _login_page(
            request, error="The form expired or was not sent by this page: try again.", status=403
        )
    if not auth.token_matches(_text(token) or ""):
        console.throttle.failed(peer)
        _log.warning("console sign-in refused: wrong admin token", extra={"event": "console"})
        return _login_page(request, error="Incorrect admin token.", status=401)
    _log.info("console sign-in", extra={"event": "console"})
    response = see_other(_safe_next(_text(form.get("next"))))
    response.set_cookie(
        SESSION_COOKIE,
        auth.issue(),
        max_age=SESSION_LIFETIME,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    response.del_cookie(LOGIN_COOKIE, path="/console")
    return response


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.StreamResponse:
    auth = request.app[CONSOLE].auth
    assert auth is not None
    auth.sign_out(signin_of(request))
    response = see_other("/console/login?signed_out=1")
    response.del_cookie(SESSION_COOKIE, path="/console")
    return response


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
