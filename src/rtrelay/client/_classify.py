"""Turn what the server said (status, body, error event, close frame) into one exception.

Pure functions: no socket, no clock. The error codes come from rtrelay's own table
(``rtrelay.errors``, DESIGN.md "Errors: one table"), which also holds OpenAI's codes
that matter here (``invalid_api_key``, ``session_expired``...); codes the table does
not know fall back on the HTTP status or the close code.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from rtrelay import errors as table

from ._exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionClosedError,
    Fault,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    SessionExpiredError,
    UpstreamError,
)

__all__ = [
    "MAX_ERROR_BODY",
    "error_from_close",
    "error_from_handshake",
    "parse_retry_after",
]

MAX_ERROR_BODY: Final = 64 * 1024
"""How much of a refused handshake's body is read: an error body is small, a stray page is not."""

_MAX_MESSAGE_CHARS: Final = 500

# ``<type>.<code>``: the close-reason form OpenAI uses for 3000/4000 and rtrelay for all.
_TYPED_REASON: Final = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")

_Row = tuple[type[APIError], Fault]

# Row families of rtrelay's table, most specific first (issubclass order matters).
_FAMILIES: Final[tuple[tuple[type[table.RelayError], _Row], ...]] = (
    (table.InsufficientQuota, (QuotaExceededError, "client")),
    (table.MessageTooLarge, (BadRequestError, "client")),
    (table.SlowConsumer, (ConnectionClosedError, "client")),
    (table.IdleTimeout, (ConnectionClosedError, "client")),
    (table.SessionExpired, (SessionExpiredError, "relay")),
    (table.RelayShuttingDown, (ServerError, "relay")),
    (table.EndedByOperator, (ConnectionClosedError, "relay")),  # a person decided: no retry
    (table.LimitsUnavailable, (ServerError, "relay")),
    (table.BadRequest, (BadRequestError, "client")),
    (table.AuthError, (AuthenticationError, "client")),
    (table.PermissionDenied, (PermissionDeniedError, "client")),
    (table.NotFound, (NotFoundError, "client")),
    (table.RateLimited, (RateLimitError, "client")),
    (table.UpstreamError, (UpstreamError, "provider")),
    (table.InternalError, (ServerError, "relay")),
)

_CLIENT_ERROR: Final[_Row] = (BadRequestError, "client")
_SERVER_ERROR: Final[_Row] = (ServerError, "relay")
_PROVIDER_ERROR: Final[_Row] = (UpstreamError, "provider")
_UNKNOWN_CLOSE: Final[_Row] = (ConnectionClosedError, "relay")

# Codes OpenAI sends that rtrelay's table has no row for.
_PROVIDER_CODES: Final[dict[str, _Row]] = {
    "beta_api_shape_disabled": (BadRequestError, "client"),
}

_BY_STATUS: Final[dict[int, _Row]] = {
    400: (BadRequestError, "client"),
    401: (AuthenticationError, "client"),
    403: (PermissionDeniedError, "client"),
    404: (NotFoundError, "client"),
    429: (RateLimitError, "client"),
    502: (UpstreamError, "provider"),
    503: (UpstreamError, "provider"),
    504: (UpstreamError, "provider"),
}

_BY_CLOSE_CODE: Final[dict[int, _Row]] = {
    1006: (NetworkError, "network"),
    1008: (ConnectionClosedError, "client"),
    1009: (BadRequestError, "client"),
    1011: (UpstreamError, "provider"),
    1012: (ServerError, "relay"),
    1013: (ServerError, "relay"),
    4000: (BadRequestError, "client"),
    4004: (NotFoundError, "client"),
    4400: (BadRequestError, "client"),
    4401: (AuthenticationError, "client"),
    4403: (PermissionDeniedError, "client"),
    4404: (NotFoundError, "client"),
    4429: (RateLimitError, "client"),
    4502: (UpstreamError, "provider"),
    4503: (UpstreamError, "provider"),
    4504: (UpstreamError, "provider"),
}


def _row_for_code(code: str | None, error_type: str | None) -> _Row | None:
    if code == "insufficient_quota" or error_type == "insufficient_quota":
        return (QuotaExceededError, "client")
    if code is None:
        return None
    if code in _PROVIDER_CODES:
        return _PROVIDER_CODES[code]
    relay_class = table.error_for_code(code)
    if relay_class is None:
        return None
    if relay_class is table.MessageTooLarge and error_type == table.UpstreamMessageTooLarge.type:
        return _PROVIDER_ERROR  # the same row, but the provider sent the frame over the limit
    for family, row in _FAMILIES:
        if issubclass(relay_class, family):
            return row
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_object(body: Any) -> dict[str, Any] | None:
    """The ``error`` object of an HTTP error body or an ``error`` event."""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name, whatever mapping the caller has."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date).

    ``now`` is the current Unix time, passed in so this stays a pure function.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now
    return max(0.0, seconds)


def error_from_handshake(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    what: str = "the WebSocket handshake",
) -> APIError:
    """The exception for a handshake answered with ``status`` instead of 101.

    The JSON body's ``error.code`` decides when known, else the status does. The same
    holds for any other refused request (a call's offer POST): ``what`` names it.
    """
    parsed: Any = None
    if body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
    error = _error_object(parsed)
    code = _str_or_none(error.get("code")) if error else None
    error_type = _str_or_none(error.get("type")) if error else None
    if error and _str_or_none(error.get("message")):
        message = _clip(str(error["message"]))
    elif body and parsed is None:
        message = f"HTTP {status}: " + _clip(body.decode("utf-8", "replace"))
    else:
        message = f"the server refused {what} with HTTP {status}"
    row = _row_for_code(code, error_type) or _BY_STATUS.get(status)
    if row is None:
        row = _CLIENT_ERROR if 400 <= status < 500 else _SERVER_ERROR
    cls, fault = row
    return cls(
        message,
        fault=fault,
        status=status,
        code=code,
        type=error_type,
        param=_str_or_none(error.get("param")) if error else None,
        request_id=_header(headers, "X-Request-Id"),
        retry_after=parse_retry_after(_header(headers, "Retry-After"), now=now),
        body=parsed if isinstance(parsed, dict) else None,
    )


def error_from_close(
    close_code: int,
    reason: str,
    error_event: dict[str, Any] | None,
    *,
    request_id: str | None = None,
) -> APIError | None:
    """The exception for a close frame from the server, or ``None`` for a clean 1000.

    ``error_event`` is the ``error`` event that came immediately before the close, if
    any: rtrelay (and OpenAI for 3000/4000/1001) explains a close that way. Its code
    wins; otherwise a ``<type>.<code>`` reason supplies one.
    """
    error = _error_object(error_event)
    code = _str_or_none(error.get("code")) if error else None
    error_type = _str_or_none(error.get("type")) if error else None
    typed = _TYPED_REASON.match(reason)
    if code is None and typed:
        error_type, code = typed.group(1), typed.group(2)
    if close_code == 1000:
        return None
    if error and _str_or_none(error.get("message")):
        message = _clip(str(error["message"]))
    elif reason and not typed:
        message = _clip(reason)
    else:
        message = f"the server closed the connection with code {close_code}"
        if reason:
            message += f" ({reason})"
    row = _row_for_code(code, error_type)
    if row is not None and row[0] is SessionExpiredError:
        # rtrelay ends its own sessions with a "<type>.<code>" reason; a provider's
        # expiry (OpenAI: "Your session hit the maximum duration...") is relayed as is.
        row = (SessionExpiredError, "relay" if typed else "provider")
    if row is None and close_code == 1001:
        expired = "maximum duration" in reason
        row = (SessionExpiredError, "provider") if expired else (ServerError, "relay")
    if row is None:
        row = _BY_CLOSE_CODE.get(close_code)
    if row is None and close_code == 3000:
        row = _PROVIDER_ERROR if error_type == "server_error" else _CLIENT_ERROR
    if row is None:
        row = _UNKNOWN_CLOSE
    cls, fault = row
    return cls(
        message,
        fault=fault,
        close_code=close_code,
        close_reason=reason,
        code=code,
        type=error_type,
        param=_str_or_none(error.get("param")) if error else None,
        request_id=request_id,
        body=error_event if error else None,
    )
