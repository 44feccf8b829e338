"""What the admin app holds, under typed ``AppKey``s (routes the lead adds read them too)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from rtrelay.ledger.store import Store

__all__ = ["CLOCK", "LIVE_SESSIONS", "OPENAPI", "STORE"]

STORE: Final = web.AppKey[Store]("rtrelay.admin.store")
LIVE_SESSIONS: Final = web.AppKey[Callable[[], list[dict[str, Any]]]]("rtrelay.admin.live_sessions")
"""This process's live sessions (id, bytes so far...), merged into ``GET /sessions``."""
OPENAPI: Final = web.AppKey[dict[str, Any]]("rtrelay.admin.openapi")
"""The OpenAPI document served at ``/openapi.json``: add paths here with new routes."""
CLOCK: Final = web.AppKey[Callable[[], datetime]]("rtrelay.admin.clock")
