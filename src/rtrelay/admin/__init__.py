"""rtrelay.admin: the admin HTTP API (keys, usage, sessions) as an aiohttp sub-app."""

from __future__ import annotations

from rtrelay.admin.app import create_admin_app
from rtrelay.admin.errors import AdminError, json_error
from rtrelay.admin.openapi import openapi_document
from rtrelay.admin.state import CLOCK, LIVE_SESSIONS, OPENAPI, STORE

__all__ = [
    "CLOCK",
    "LIVE_SESSIONS",
    "OPENAPI",
    "STORE",
    "AdminError",
    "create_admin_app",
    "json_error",
    "openapi_document",
]
