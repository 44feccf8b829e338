"""The admin API's middlewares: bearer-token check, and every failure as JSON."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from rtrelay.admin.errors import AdminError, json_error

__all__ = ["auth_middleware", "error_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_log = logging.getLogger("rtrelay.admin")


def auth_middleware(token: str | None) -> Middleware:
    """Require ``Authorization: Bearer <token>`` on every route of the app.

    Both sides are hashed before the constant-time compare, so neither the
    token's content nor its length shows in the timing. ``token=None`` (no admin
    token configured) turns the whole API off with a 403 that says so.
    """
    expected = None if token is None else hashlib.sha256(token.encode()).digest()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is None:
            raise AdminError(
                403,
                "admin_api_disabled",
                "The admin API is off: no admin token is configured "
                "(set the environment variable named by admin.token_env).",
            )
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise AdminError(
                401,
                "missing_api_key",
                "The admin API needs 'Authorization: Bearer <admin token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="rtrelay-admin"'},
            )
        digest = hashlib.sha256(presented.strip().encode()).digest()
        if not hmac.compare_digest(digest, expected):
            raise AdminError(
                401,
                "invalid_api_key",
                "Incorrect admin token.",
                headers={"WWW-Authenticate": 'Bearer realm="rtrelay-admin", error="invalid_token"'},
            )
        return await handler(request)

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``AdminError`` and aiohttp's own 404/405 become JSON; a bug becomes a logged 500."""
    try:
        return await handler(request)
    except AdminError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return json_error(exc.status, code, exc.reason, headers=_allow(exc))
    except Exception:
        _log.exception("admin API handler failed: %s %s", request.method, request.path)
        return json_error(500, "internal_error", "The admin API failed.", type="server_error")


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return None if allow is None else {"Allow": allow}
