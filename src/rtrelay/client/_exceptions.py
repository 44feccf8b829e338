"""The exceptions of ``rtrelay.client``: every failure says whose fault it was.

A network failure, a refused key and a dead provider call for different
reactions, so each failure is its own class and carries the wire facts it was
parsed from (HTTP status or close code, error code, message, request id)::

    RealtimeError
    ├── InvalidStateError (also RuntimeError) .. a call the connection's state forbids
    ├── QueueFullError (also BufferError) ...... send() while not open, queue at its bound
    ├── ConnectionClosed ....................... the stream ended cleanly (1000, or close())
    └── APIError ............................... a failure with a cause and a ``fault``
        ├── NetworkError ....................... DNS, refused, reset, lost (1006): network
        │   └── ConnectTimeoutError (also TimeoutError)
        ├── BadRequestError .................... 400 / 4400 / 4000 / 1009: client
        ├── AuthenticationError ................ 401 / 4401 / 3000 invalid_api_key: client
        ├── PermissionDeniedError .............. 403 / 4403: client
        ├── NotFoundError ...................... 404 / 4404 / 4004: client
        ├── RateLimitError ..................... 429 / 4429, ``retry_after``: client
        ├── QuotaExceededError ................. insufficient_quota: client
        ├── UpstreamError ...................... 502 / 503 / 504 / 45xx / 1011: provider
        ├── ServerError ........................ 500, 1012, 1013, shutting down: relay
        ├── SessionExpiredError ................ session_expired (1001)
        └── ConnectionClosedError .............. any other unexpected close

``fault`` is one of ``"client"`` (your key, request, quota or pace),
``"relay"`` (the endpoint you connected to), ``"provider"`` (the model provider
behind it) or ``"network"`` (nothing answered, or the connection broke).
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConnectTimeoutError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "Fault",
    "InvalidStateError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueueFullError",
    "QuotaExceededError",
    "RateLimitError",
    "RealtimeError",
    "ServerError",
    "SessionExpiredError",
    "UpstreamError",
]

Fault = Literal["client", "relay", "provider", "network"]


class RealtimeError(Exception):
    """Root of every exception ``rtrelay.client`` raises."""


class InvalidStateError(RealtimeError, RuntimeError):
    """The call is not allowed in the connection's current state."""


class QueueFullError(RealtimeError, BufferError):
    """``send()`` while not open, with ``max_enqueued_messages`` already queued."""


class ConnectionClosed(RealtimeError):
    """The event stream ended without a failure: ``close()`` was called or the server sent 1000."""

    def __init__(self, close_code: int | None = None, close_reason: str = "") -> None:
        self.close_code = close_code
        self.close_reason = close_reason
        super().__init__(f"connection closed (code {close_code}) {close_reason}".rstrip())


class APIError(RealtimeError):
    """A failure with a cause: whose fault it was and the wire facts behind it.

    Attributes:
        fault: ``"client"``, ``"relay"``, ``"provider"`` or ``"network"``.
        status: HTTP status of a refused handshake, else ``None``.
        close_code: WebSocket close code when the failure came after the 101, else ``None``.
        close_reason: the close frame's reason text.
        code: the error ``code`` (``"invalid_api_key"``...), when the server sent one.
        type: the error ``type`` (``"invalid_request_error"``...), when the server sent one.
        message: a human-readable message (the server's when it sent one).
        param: the error's ``param``, when present.
        request_id: the ``X-Request-Id`` of the handshake response, when present.
        retry_after: seconds to wait before retrying, from ``Retry-After``.
        body: the parsed JSON error body or ``error`` event, when there was one.
    """

    default_fault: Fault = "relay"

    def __init__(
        self,
        message: str,
        *,
        fault: Fault | None = None,
        status: int | None = None,
        close_code: int | None = None,
        close_reason: str = "",
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.message = message
        self.fault: Fault = fault if fault is not None else self.default_fault
        self.status = status
        self.close_code = close_code
        self.close_reason = close_reason
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body
        super().__init__(message)

    def __str__(self) -> str:
        where = []
        if self.status is not None:
            where.append(f"HTTP {self.status}")
        if self.close_code is not None:
            where.append(f"close {self.close_code}")
        if self.code:
            where.append(self.code)
        head = " ".join(where)
        tail = f" [fault: {self.fault}"
        if self.request_id:
            tail += f", request id: {self.request_id}"
        if self.retry_after is not None:
            tail += f", retry after: {self.retry_after:g}s"
        tail += "]"
        return f"{head}: {self.message}{tail}" if head else f"{self.message}{tail}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, fault={self.fault!r}, "
            f"status={self.status!r}, close_code={self.close_code!r}, code={self.code!r}, "
            f"request_id={self.request_id!r})"
        )


class NetworkError(APIError):
    """Nothing answered, or the connection broke: DNS, refused, reset, lost."""

    default_fault: Fault = "network"


class ConnectTimeoutError(NetworkError, TimeoutError):
    """The TCP connect plus WebSocket handshake took longer than ``connection_timeout``."""


class BadRequestError(APIError):
    """The request was malformed or used a shape the server does not speak."""

    default_fault: Fault = "client"


class AuthenticationError(APIError):
    """No key, or the key is unknown, revoked or expired (401)."""

    default_fault: Fault = "client"


class PermissionDeniedError(APIError):
    """The key or the Origin may not do this (403)."""

    default_fault: Fault = "client"


class NotFoundError(APIError):
    """No such model or endpoint (404)."""

    default_fault: Fault = "client"


class RateLimitError(APIError):
    """Too many sessions started or open (429); wait ``retry_after`` seconds."""

    default_fault: Fault = "client"


class QuotaExceededError(APIError):
    """The budget is spent (``insufficient_quota``); retrying will not help.

    Deliberately *not* a :class:`RateLimitError`: code that retries rate limits
    must not loop on a spent budget.
    """

    default_fault: Fault = "client"


class UpstreamError(APIError):
    """The model provider behind the endpoint refused, timed out or went away."""

    default_fault: Fault = "provider"


class ServerError(APIError):
    """The endpoint itself failed, is restarting or is shutting down."""

    default_fault: Fault = "relay"


class SessionExpiredError(APIError):
    """The session reached its maximum duration; a new connection starts a new session."""

    default_fault: Fault = "provider"


class ConnectionClosedError(APIError):
    """The server closed the connection with a code this library has no class for."""
