"""Admin API failures, rendered as OpenAI-style JSON errors.

``{"error": {"type", "code", "message", "param"}}``, the same body shape as the
relay's own errors (DESIGN.md), so one client-side error handler reads both.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["AdminError", "json_error"]


class AdminError(Exception):
    """Raised by a handler; the middleware turns it into the JSON response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.type = type
        self.headers = headers or {}

    def response(self) -> web.Response:
        return json_error(
            self.status,
            self.code,
            self.message,
            param=self.param,
            type=self.type,
            headers=self.headers,
        )


def json_error(
    status: int,
    code: str,
    message: str,
    *,
    param: str | None = None,
    type: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "error": {"type": type, "code": code, "message": message, "param": param}
    }
    return web.json_response(body, status=status, headers=headers)
