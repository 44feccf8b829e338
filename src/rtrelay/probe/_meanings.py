"""What codes mean and what to do about them: HTTP statuses, error codes, close codes, TLS.

rtrelay's own codes come from ``rtrelay.errors`` (its classes carry the HTTP
status, the close code and the meaning); this module only adds the advice a
person needs next, keyed by those classes, plus the codes that are not
rtrelay's: RFC 6455 close codes, OpenAI's 3000/4000, and OpenSSL's
certificate verification results.
"""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import Final

from rtrelay import errors
from rtrelay.errors import ERROR_CLASSES, RelayError

__all__ = [
    "ADVICE",
    "close_meaning",
    "error_advice",
    "error_meaning",
    "reason_error_code",
    "rows_for_close_code",
    "rows_for_status",
    "status_meaning",
    "tls_verify_meaning",
]

ADVICE: Final[Mapping[type[RelayError], str]] = {
    errors.MissingApiKey: (
        "no credential reached the server: server SDKs send 'Authorization: Bearer <key>', "
        "browsers offer the subprotocol 'openai-insecure-api-key.<key>' (pass --key)"
    ),
    errors.InvalidApiKey: (
        "the relay does not know this key, or it was revoked or has expired: check the key "
        "(`rtrelay keys list`) or create a new one (`rtrelay keys create`)"
    ),
    errors.OriginNotAllowed: (
        "the page's Origin is not allowed: add it to server.allowed_origins or to the key's "
        "origins, or connect from an allowed page"
    ),
    errors.ModelNotAllowed: (
        "this key may not use this model: pick a model the key allows (--model) or widen the "
        "key's model list"
    ),
    errors.MissingModel: "the URL names no model: add ?model=<model> (--model)",
    errors.InvalidRequest: "a request field has a wrong type or value: fix the field 'param' names",
    errors.InvalidEvent: (
        "the relay refused one event that is not a JSON object with exactly one 'type' (the "
        "session goes on): send each event as one JSON object"
    ),
    errors.WrongProtocolRoute: (
        "this model is served on another route, which the message names (Realtime models at "
        "/v1/realtime, GPT-Live models at /v1/live/sessions, translation models at "
        "/v1/realtime/translations): connect there"
    ),
    errors.SessionStartTimeout: (
        "a GPT-Live client must send session.start as its first frame, within the relay's "
        "timeouts.session_start of the socket opening: send it first"
    ),
    errors.UpgradeRequired: (
        "the request reached the server without 'Upgrade: websocket': a proxy in between drops "
        "the upgrade headers; configure it to pass WebSocket upgrades"
    ),
    errors.MalformedRequest: (
        "the server could not read the request (a control character in a header, a missing or "
        "bad Sec-WebSocket-Key or -Version): fix the client, or the proxy that rewrote it"
    ),
    errors.RequestTimeout: (
        "the request did not arrive within the relay's timeouts.request: a stalled network or "
        "a proxy holding the request; retry"
    ),
    errors.ClientGone: (
        "the client hung up before its session was open (the relay only records it): if clients "
        "give up on purpose, check how long the dial takes (timeouts.dial)"
    ),
    errors.ModelNotFound: (
        "no upstream channel serves this model: check the model name (--model) against the "
        "relay's channels"
    ),
    errors.CallNotFound: (
        "no WebRTC call with this id belongs to this key: use the relay call id from the "
        "Location of the call's answer, with the key (or a token of the key) that created it"
    ),
    errors.RateLimitExceeded: (
        "too many sessions were started with this key recently: wait for Retry-After, or raise "
        "the key's rate limit"
    ),
    errors.ConcurrencyLimitExceeded: (
        "this key already has as many sessions open as it may: close one, or raise the key's "
        "concurrency limit"
    ),
    errors.InsufficientQuota: (
        "this key's budget is spent: raise the budget or wait for the next budget period"
    ),
    errors.UpstreamRejected: (
        "the relay reached the provider, which refused the handshake (its answer is in the "
        "message): check the channel's provider key and model mapping"
    ),
    errors.UpstreamUnavailable: (
        "every upstream channel failed or is paused after failures: retry after Retry-After, and "
        "check the provider's status and the relay's channels"
    ),
    errors.UpstreamTimeout: (
        "the provider did not answer the relay's handshake in time: retry; if it persists, "
        "check the network to the provider or raise timeouts.dial"
    ),
    errors.UpstreamDisconnected: "the relay lost the provider mid-session: reconnect",
    errors.BetaNotSupportedByChannel: (
        "this model is only served in the GA shape: connect without the beta header or "
        "subprotocol (drop --beta)"
    ),
    errors.MessageTooLarge: "a message was over the size limit: send smaller chunks",
    errors.SlowConsumer: "the client stopped reading events: read them as they arrive",
    errors.IdleTimeout: "nothing happened for the idle window: reconnect when needed",
    errors.SessionExpired: "the session reached its maximum length: open a new one",
    errors.RelayShuttingDown: "the relay is shutting down: reconnect (another instance takes over)",
    errors.EndedByOperator: (
        "an operator ended the session from the relay's console: ask them why before "
        "reconnecting (a revoked key is refused on the next handshake)"
    ),
    errors.LimitsUnavailable: (
        "the relay cannot reach Redis or its store to check this key's limits: retry after "
        "Retry-After; operators: see /readyz and the relay's log"
    ),
    errors.InternalError: (
        "the server failed unexpectedly: its log has the details (search for the X-Request-Id)"
    ),
}

# Codes OpenAI sends that rtrelay's table does not define (protocol.md §1, §3).
_OTHER_ERRORS: Final[Mapping[str, tuple[str, str]]] = {
    "beta_api_shape_disabled": (
        "The Realtime beta API shape is retired.",
        "connect without 'OpenAI-Beta: realtime=v1' and the openai-beta.realtime-v1 "
        "subprotocol (drop --beta)",
    ),
}

_RFC6455: Final[Mapping[int, str]] = {
    1000: "normal closure",
    1001: "going away: the server is shutting down or ended the session",
    1002: "protocol error: a frame broke the WebSocket protocol",
    1003: "unsupported data: a frame type the other side does not accept",
    1005: "no status code: the close frame carried no code",
    1006: "abnormal closure: the connection dropped without a close frame",
    1007: "invalid payload: a text frame was not valid UTF-8",
    1008: "policy violation",
    1009: "message too big",
    1010: "a required extension was not negotiated",
    1011: "internal error on the server",
    1012: "the service is restarting",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}

_OPENAI_CLOSE: Final[Mapping[int, str]] = {
    3000: "OpenAI's close for a fatal error; the reason is '<type>.<code>' of the error event",
    4000: "OpenAI refuses the retired beta API shape (beta_api_shape_disabled)",
    4004: "OpenAI: model not found",
}

# OpenSSL X509_V_ERR_* numbers (x509_vfy.h) in the words a person would use.
_TLS_VERIFY: Final[Mapping[int, str]] = {
    2: "unknown CA: the issuer's certificate is not available locally",
    9: "the certificate is not yet valid",
    10: "the certificate has expired",
    18: "the certificate is self-signed",
    19: "the chain ends in a self-signed root that is not trusted here (unknown CA)",
    20: "unknown CA: the issuer is not trusted here",
    21: "unknown CA: the chain cannot be verified (the server may not send its intermediates)",
    23: "the certificate was revoked",
    26: "the certificate is not meant for TLS servers",
    62: "hostname mismatch: the certificate does not name this host",
    64: "IP address mismatch: the certificate does not name this IP address",
}


def rows_for_close_code(code: int) -> tuple[type[RelayError], ...]:
    """The rows of rtrelay's error table that close with ``code``."""
    return tuple(cls for cls in ERROR_CLASSES if cls.close_code == code)


def rows_for_status(status: int) -> tuple[type[RelayError], ...]:
    """The rows of rtrelay's error table answered with HTTP ``status``."""
    return tuple(cls for cls in ERROR_CLASSES if cls.http_status == status)


def error_meaning(code: str | None) -> str | None:
    """What an ``error.code`` means, from rtrelay's table or OpenAI's extra codes."""
    if code is None:
        return None
    cls = errors.error_for_code(code)
    if cls is not None:
        return cls.default_message
    other = _OTHER_ERRORS.get(code)
    return other[0] if other else None


def error_advice(code: str | None) -> str | None:
    """What to do about an ``error.code``, if the probe knows."""
    if code is None:
        return None
    cls = errors.error_for_code(code)
    if cls is not None:
        return ADVICE.get(cls)
    other = _OTHER_ERRORS.get(code)
    return other[1] if other else None


def reason_error_code(reason: str) -> str | None:
    """``invalid_request_error.invalid_api_key`` → ``invalid_api_key`` (OpenAI's reason form)."""
    head, dot, code = reason.strip().partition(".")
    if not dot or not head or not code or " " in reason.strip():
        return None
    return code


def close_meaning(code: int | None) -> str:
    """A close code in words: RFC 6455, OpenAI's codes, then rtrelay's table."""
    if code is None:
        return "no close code"
    rows = rows_for_close_code(code)
    known = [cls.code for cls in rows if cls is not errors.InternalError]
    if code in _RFC6455:
        text = _RFC6455[code]
        if known:
            text += f" (rtrelay uses it for {', '.join(known)})"
        return text
    if code in _OPENAI_CLOSE:
        return _OPENAI_CLOSE[code]
    if rows:
        status = rows[0].http_status
        mirror = f"rtrelay's mirror of HTTP {status}" if status else "rtrelay"
        return f"{mirror}: {', '.join(known)}"
    if 3000 <= code <= 3999:
        return "a code registered with IANA for a library or framework"
    if 4000 <= code <= 4999:
        return "an application-defined code; the reason should say more"
    return "not a valid close code"


def status_meaning(status: int) -> str:
    """An HTTP status in words, with the rtrelay codes that use it."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "unknown status"
    if 300 <= status < 400:
        return (
            f"{phrase}: a redirect; WebSocket clients, browsers included, do not follow "
            "redirects: use the URL in Location"
        )
    if 200 <= status < 300:
        return (
            f"{phrase}: the server answered as plain HTTP, so this path is not a WebSocket "
            "endpoint (wrong path or port?)"
        )
    codes = [cls.code for cls in rows_for_status(status) if cls is not errors.InternalError]
    if codes:
        return f"{phrase} (rtrelay uses it for {', '.join(codes)})"
    return phrase


def tls_verify_meaning(verify_code: int | None, verify_message: str) -> str:
    """Certificate verification failures in plain words, OpenSSL's text as a fallback."""
    if verify_code is not None and verify_code in _TLS_VERIFY:
        return _TLS_VERIFY[verify_code]
    return verify_message or "certificate verification failed"
