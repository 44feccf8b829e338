"""``create_admin_app``: the aiohttp sub-application mounted at ``/admin/v1``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from rtrelay.admin.auth import auth_middleware, error_middleware
from rtrelay.admin.handlers import routes
from rtrelay.admin.openapi import openapi_document
from rtrelay.admin.state import CLOCK, LIVE_SESSIONS, OPENAPI, STORE
from rtrelay.ledger.store import Store

__all__ = ["create_admin_app"]


def _no_live_sessions() -> list[dict[str, Any]]:
    return []


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_admin_app(
    store: Store,
    *,
    token: str | None,
    live_sessions: Callable[[], list[dict[str, Any]]] = _no_live_sessions,
    clock: Callable[[], datetime] = _utcnow,
) -> web.Application:
    """The admin API over ``store``, for ``parent.add_subapp("/admin/v1", app)``.

    Every route, including ones added later, needs ``Authorization: Bearer
    <token>``; ``token=None`` answers every request with 403 ``admin_api_disabled``.
    To add routes (e.g. ``/channels``): ``app.router.add_get(...)`` before the
    parent app starts, read the store from ``app[STORE]``, and describe them in
    ``app[OPENAPI]["paths"]``.

    Args:
        live_sessions: this process's live sessions as dicts with an ``id``;
            ``GET /sessions`` attaches each one to its row under ``live``.
    """
    app = web.Application(middlewares=[error_middleware, auth_middleware(token)])
    app[STORE] = store
    app[LIVE_SESSIONS] = live_sessions
    app[OPENAPI] = copy.deepcopy(openapi_document())
    app[CLOCK] = clock
    app.add_routes(routes)
    return app
