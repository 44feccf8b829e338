"""The error table of DESIGN.md: every failure rtrelay reports, in one place.

Each failure is a class whose attributes *are* its row of the table. The HTTP
response before the 101, the ``error`` event after it, and the close frame that
follows are all rendered from those attributes and nowhere else::

    RelayError
    ├── BadRequest ............ 400 / 4400   missing_model, beta_not_supported_by_channel,
    │                                        invalid_value, invalid_event (one event refused),
    │                                        websocket_upgrade_required (426),
    │                                        wrong_protocol_route (a model on another
    │                                        protocol's route), session_start_timeout,
    │                                        malformed_request, request_timeout (408),
    │                                        client_gone (499: hung up before the 101)
    ├── AuthError ............. 401 / 4401   missing_api_key, invalid_api_key
    ├── PermissionDenied ...... 403 / 4403   origin_not_allowed, model_not_allowed
    ├── NotFound .............. 404 / 4404   model_not_found, call_not_found
    ├── RateLimited ........... 429 / 4429   rate_limit_exceeded, concurrency_limit_exceeded,
    │                                        insufficient_quota
    ├── UpstreamError ......... 5xx / 45xx   upstream_rejected, upstream_unavailable,
    │                                        upstream_timeout (also a TimeoutError),
    │                                        upstream_disconnected (1011)
    ├── SessionEnded .......... after 101    message_too_large (1009), slow_consumer (1008),
    │                                        idle_timeout (1000), session_expired (1001),
    │                                        relay_shutting_down (503 / 1001),
    │                                        ended_by_operator (1008)
    ├── LimitsUnavailable ..... 503 / 4503   limits_unavailable (Redis or the store unreachable)
    └── InternalError ......... 500 / 1011   anything unexpected (details never leave the relay)
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Final

__all__ = [
    "ERROR_CLASSES",
    "AuthError",
    "BadRequest",
    "BetaNotSupportedByChannel",
    "CallNotFound",
    "ClientGone",
    "CloseCode",
    "ConcurrencyLimitExceeded",
    "EndedByOperator",
    "IdleTimeout",
    "InsufficientQuota",
    "InternalError",
    "InvalidApiKey",
    "InvalidEvent",
    "InvalidRequest",
    "LimitsUnavailable",
    "MalformedRequest",
    "MessageTooLarge",
    "MissingApiKey",
    "MissingModel",
    "ModelNotAllowed",
    "ModelNotFound",
    "NotFound",
    "OriginNotAllowed",
    "PermissionDenied",
    "RateLimitExceeded",
    "RateLimited",
    "RelayError",
    "RelayShuttingDown",
    "RequestTimeout",
    "SessionEnded",
    "SessionExpired",
    "SessionStartTimeout",
    "SlowConsumer",
    "UpgradeRequired",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamMessageTooLarge",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "WrongProtocolRoute",
    "error_for_code",
    "is_sendable_close_code",
]


class CloseCode(enum.IntEnum):
    """WebSocket close codes rtrelay sends (RFC 6455 plus the 4xxx mirror of HTTP)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    TOO_MANY_REQUESTS = 4429
    BAD_GATEWAY = 4502
    SERVICE_UNAVAILABLE = 4503
    GATEWAY_TIMEOUT = 4504


def is_sendable_close_code(code: int) -> bool:
    """Whether RFC 6455 lets an endpoint put ``code`` in a close frame.

    1005, 1006 and 1015 are reserved for "no code", "abnormal" and "TLS failure"
    and must never be sent; 1004 and 1016-2999 are unassigned.
    """
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or (
        3000 <= code <= 4999
    )


class RelayError(Exception):
    """Root of every failure rtrelay reports to a client."""

    type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int | None] = 500
    close_code: ClassVar[int] = CloseCode.INTERNAL_ERROR
    default_message: ClassVar[str] = "The relay failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.param = param
        self.retry_after = retry_after
        super().__init__(self.message)

    def error_object(self, client_event_id: str | None = None) -> dict[str, Any]:
        """The OpenAI-style ``error`` object shared by the HTTP body and the event."""
        body: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        if client_event_id is not None:
            body["event_id"] = client_event_id
        return body

    def to_http_body(self) -> dict[str, Any]:
        return {"error": self.error_object()}

    def http_headers(self) -> dict[str, str]:
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {}

    def to_event(self, event_id: str, client_event_id: str | None = None) -> dict[str, Any]:
        """The Realtime (and translation) ``error`` event: the client's event id inside."""
        error = self.error_object()
        error["event_id"] = client_event_id
        return {"type": "error", "event_id": event_id, "error": error}

    def to_live_event(self, event_id: str, client_event_id: str | None = None) -> dict[str, Any]:
        """GPT-Live's ``error`` event (``openai.types.live.ErrorEvent``): the client's event
        id is ``client_event_id``, in the error and beside it."""
        error = self.error_object()
        error["client_event_id"] = client_event_id
        return {
            "type": "error",
            "event_id": event_id,
            "error": error,
            "client_event_id": client_event_id,
        }

    def close_reason(self) -> str:
        """``<type>.<code>``, the close-reason form OpenAI itself uses."""
        return f"{self.type}.{self.code}"


class BadRequest(RelayError):
    type = "invalid_request_error"
    http_status = 400
    close_code = CloseCode.BAD_REQUEST


class MissingModel(BadRequest):
    code = "missing_model"
    default_message = "Missing required query parameter: 'model'."


class InvalidRequest(BadRequest):
    """A request body field has a wrong type or value (``param`` names it)."""

    code = "invalid_value"
    default_message = "The request body is invalid."


class InvalidEvent(BadRequest):
    """A client event the relay cannot read the way the provider would; it is not forwarded.

    The session stays open (like OpenAI's own ``invalid_event`` error), so only the
    event is refused: budget decisions are never made on a frame's spelling.
    """

    code = "invalid_event"
    default_message = "The event is not a JSON object with one 'type' field."


class BetaNotSupportedByChannel(BadRequest):
    code = "beta_not_supported_by_channel"
    default_message = (
        "This model is served only in the GA shape; connect without "
        "'OpenAI-Beta: realtime=v1' and the 'openai-beta.realtime-v1' subprotocol."
    )


class WrongProtocolRoute(BadRequest):
    """A model sent to another protocol's route (a GPT-Live model on ``/v1/realtime``, a
    Realtime model on ``/v1/live/sessions``, ...): the message names the right route. OpenAI
    itself answers ``invalid_model``, which does not say where to go."""

    code = "wrong_protocol_route"
    default_message = "This model is served on another route."


class SessionStartTimeout(BadRequest):
    """A GPT-Live client did not send ``session.start`` (its first frame) in time."""

    code = "session_start_timeout"
    default_message = "No 'session.start' event arrived in time: send it first."


class UpgradeRequired(BadRequest):
    code = "websocket_upgrade_required"
    http_status = 426
    default_message = "This endpoint speaks WebSocket only: send an Upgrade: websocket request."


class MalformedRequest(BadRequest):
    """The HTTP request could not be read (a control byte in a header, a bad WebSocket key).

    The message never quotes the request: its headers may carry a credential.
    """

    code = "malformed_request"
    default_message = "The HTTP request is malformed and could not be read."


class RequestTimeout(BadRequest):
    """The request head (or body) did not arrive within ``timeouts.request``."""

    code = "request_timeout"
    http_status = 408
    default_message = "The request did not arrive in time."


class ClientGone(BadRequest):
    """The client hung up while its handshake was admitted or dialed (nginx's 499).

    Nobody is left to read it: it is what the ledger and the metrics record.
    """

    code = "client_gone"
    http_status = 499
    default_message = "The client closed the connection before its session was open."


class AuthError(RelayError):
    type = "invalid_request_error"
    http_status = 401
    close_code = CloseCode.UNAUTHORIZED


class MissingApiKey(AuthError):
    code = "missing_api_key"
    default_message = (
        "You didn't provide an API key. Send 'Authorization: Bearer <key>', an 'api-key' "
        "header, or the subprotocol 'openai-insecure-api-key.<key>'."
    )


class InvalidApiKey(AuthError):
    code = "invalid_api_key"
    default_message = "Incorrect API key provided, or the key was revoked or has expired."


class PermissionDenied(RelayError):
    type = "invalid_request_error"
    http_status = 403
    close_code = CloseCode.FORBIDDEN


class OriginNotAllowed(PermissionDenied):
    code = "origin_not_allowed"
    default_message = "This Origin is not allowed to connect."


class ModelNotAllowed(PermissionDenied):
    code = "model_not_allowed"
    default_message = "This API key may not use the requested model."


class NotFound(RelayError):
    type = "invalid_request_error"
    http_status = 404
    close_code = CloseCode.NOT_FOUND


class ModelNotFound(NotFound):
    code = "model_not_found"
    default_message = "No upstream channel serves the requested model."


class CallNotFound(NotFound):
    """No WebRTC call with this relay id that the caller's key may see (someone else's
    call id is answered the same way: whether it exists is not the caller's business)."""

    code = "call_not_found"
    default_message = "No call with this id exists for this key."


class RateLimited(RelayError):
    type = "rate_limit_error"
    http_status = 429
    close_code = CloseCode.TOO_MANY_REQUESTS


class RateLimitExceeded(RateLimited):
    code = "rate_limit_exceeded"
    default_message = "Too many sessions started for this key; retry after the delay given."


class ConcurrencyLimitExceeded(RateLimited):
    code = "concurrency_limit_exceeded"
    default_message = "Too many sessions open at once for this key."


class InsufficientQuota(RateLimited):
    type = "insufficient_quota"
    code = "insufficient_quota"
    default_message = "This key's budget is spent."


class UpstreamError(RelayError):
    type = "server_error"
    http_status: ClassVar[int | None] = 502
    close_code = CloseCode.BAD_GATEWAY


class UpstreamRejected(UpstreamError):
    code = "upstream_rejected"
    default_message = "The provider refused the connection."


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    http_status = 503
    close_code = CloseCode.SERVICE_UNAVAILABLE
    default_message = "No upstream channel is available for this model right now."


class UpstreamTimeout(UpstreamError, TimeoutError):
    code = "upstream_timeout"
    http_status = 504
    close_code = CloseCode.GATEWAY_TIMEOUT
    default_message = "The provider did not complete the handshake in time."


class UpstreamDisconnected(UpstreamError):
    code = "upstream_disconnected"
    http_status = None
    close_code = CloseCode.INTERNAL_ERROR
    default_message = "The connection to the provider was lost."


class SessionEnded(RelayError):
    """Failures that can only happen once the session is open."""

    type = "invalid_request_error"
    http_status: ClassVar[int | None] = None


class MessageTooLarge(SessionEnded):
    code = "message_too_large"
    close_code = CloseCode.MESSAGE_TOO_BIG
    default_message = "A WebSocket message exceeded the relay's size limit."


class UpstreamMessageTooLarge(MessageTooLarge):
    """The provider, not the client, sent the frame over the limit (same row, its fault)."""

    type = "server_error"
    default_message = "The provider sent a WebSocket message over the relay's size limit."


class SlowConsumer(SessionEnded):
    type = "server_error"
    code = "slow_consumer"
    close_code = CloseCode.POLICY_VIOLATION
    default_message = "The client stopped reading; the relay's send buffer stayed full too long."


class IdleTimeout(SessionEnded):
    code = "idle_timeout"
    close_code = CloseCode.NORMAL
    default_message = "The session was idle for too long."


class SessionExpired(SessionEnded):
    code = "session_expired"
    close_code = CloseCode.GOING_AWAY
    default_message = "The session hit its maximum duration."


class RelayShuttingDown(SessionEnded):
    type = "server_error"
    code = "relay_shutting_down"
    http_status = 503
    close_code = CloseCode.GOING_AWAY
    default_message = "The relay is shutting down; reconnect to another instance."


class EndedByOperator(SessionEnded):
    """An operator ended the live session (the console's "end session").

    1008, RFC 6455's generic "policy" close: a person decided, so a client should not
    reconnect on its own (``rtrelay.client`` does not). The session is settled as any
    other: usage so far is billed, the lease released, the session row ``completed``.
    """

    code = "ended_by_operator"
    close_code = CloseCode.POLICY_VIOLATION
    default_message = "An operator of this relay ended the session."


class LimitsUnavailable(RelayError):
    """What admission needs cannot be reached: Redis (shared limits, with ``[redis] on_error =
    "closed"``) or the store (keys, spend). Nothing is wrong with the client: retry later."""

    type = "server_error"
    code = "limits_unavailable"
    http_status = 503
    close_code = CloseCode.SERVICE_UNAVAILABLE
    default_message = "The relay cannot check this key's limits right now; retry shortly."


class InternalError(RelayError):
    """An unexpected failure; its details stay in the relay's log."""


ERROR_CLASSES: Final[tuple[type[RelayError], ...]] = (
    MissingApiKey,
    InvalidApiKey,
    OriginNotAllowed,
    ModelNotAllowed,
    MissingModel,
    InvalidRequest,
    InvalidEvent,
    UpgradeRequired,
    MalformedRequest,
    RequestTimeout,
    ClientGone,
    ModelNotFound,
    CallNotFound,
    RateLimitExceeded,
    ConcurrencyLimitExceeded,
    InsufficientQuota,
    UpstreamRejected,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamDisconnected,
    BetaNotSupportedByChannel,
    WrongProtocolRoute,
    SessionStartTimeout,
    MessageTooLarge,
    SlowConsumer,
    IdleTimeout,
    SessionExpired,
    RelayShuttingDown,
    EndedByOperator,
    LimitsUnavailable,
    InternalError,
)

_BY_CODE: Final[dict[str, type[RelayError]]] = {cls.code: cls for cls in ERROR_CLASSES}


def error_for_code(code: str) -> type[RelayError] | None:
    """The class of the table row with this ``code``, if rtrelay has one."""
    return _BY_CODE.get(code)
