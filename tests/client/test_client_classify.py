"""Turning what a server said into one exception: pure functions over status, body, close."""

from __future__ import annotations

import json

import pytest

from rtrelay import errors as table
from rtrelay.client import (
    AuthenticationError,
    BadRequestError,
    ConnectionClosedError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SessionExpiredError,
    UpstreamError,
)
from rtrelay.client._classify import error_from_close, error_from_handshake, parse_retry_after

NOW = 1_800_000_000.0


def _body(code: str, type_: str = "invalid_request_error", message: str = "m") -> bytes:
    return json.dumps({"error": {"type": type_, "code": code, "message": message}}).encode()


def test_close_1000_is_not_an_error() -> None:
    assert error_from_close(1000, "", None) is None
    idle = table.IdleTimeout()
    assert error_from_close(1000, idle.close_reason(), idle.to_event("e")) is None


def test_openai_session_expiry_is_the_providers() -> None:
    message = "Your session hit the maximum duration of 60 minutes."
    event = {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "session_expired", "message": message},
    }
    error = error_from_close(1001, message, event)
    assert type(error) is SessionExpiredError
    assert error.fault == "provider"
    assert error.message == message
    # Even without the event, the reason text says it.
    assert type(error_from_close(1001, message, None)) is SessionExpiredError


def test_rtrelay_session_expiry_is_the_relays() -> None:
    exc = table.SessionExpired()
    error = error_from_close(1001, exc.close_reason(), exc.to_event("e"))
    assert type(error) is SessionExpiredError
    assert error.fault == "relay"


def test_an_oversized_frame_is_whoever_sent_it() -> None:
    theirs = table.UpstreamMessageTooLarge()
    error = error_from_close(1009, theirs.close_reason(), theirs.to_event("e"))
    assert (type(error), error.fault) == (UpstreamError, "provider")
    ours = table.MessageTooLarge()
    error = error_from_close(1009, ours.close_reason(), ours.to_event("e"))
    assert (type(error), error.fault) == (BadRequestError, "client")


def test_a_bare_going_away_is_a_server_restart() -> None:
    error = error_from_close(1001, "server shutting down", None)
    assert type(error) is ServerError
    assert error.message == "server shutting down"


def test_reason_alone_supplies_the_code() -> None:
    error = error_from_close(3000, "invalid_request_error.invalid_api_key", None)
    assert type(error) is AuthenticationError
    assert (error.type, error.code) == ("invalid_request_error", "invalid_api_key")


def test_unknown_3000_codes_fall_back_on_the_type() -> None:
    assert type(error_from_close(3000, "server_error.something_new", None)) is UpstreamError
    assert type(error_from_close(3000, "invalid_request_error.new", None)) is BadRequestError


@pytest.mark.parametrize(
    ("code", "cls", "fault"),
    [
        (1006, NetworkError, "network"),
        (1008, ConnectionClosedError, "client"),
        (1009, BadRequestError, "client"),
        (1011, UpstreamError, "provider"),
        (1012, ServerError, "relay"),
        (1013, ServerError, "relay"),
        (4004, NotFoundError, "client"),
        (4429, RateLimitError, "client"),
        (4999, ConnectionClosedError, "relay"),
    ],
)
def test_close_codes_without_an_explanation(code: int, cls: type, fault: str) -> None:
    error = error_from_close(code, "", None)
    assert type(error) is cls
    assert error.fault == fault
    assert error.close_code == code


def test_an_unrelated_earlier_error_event_does_not_explain_a_close() -> None:
    # Only the frame right before the close explains it; the caller passes None otherwise.
    error = error_from_close(4503, "server_error.upstream_unavailable", None)
    assert type(error) is UpstreamError
    assert error.code == "upstream_unavailable"


@pytest.mark.parametrize(
    ("status", "cls", "fault"),
    [
        (400, BadRequestError, "client"),
        (401, AuthenticationError, "client"),
        (404, NotFoundError, "client"),
        (418, BadRequestError, "client"),
        (429, RateLimitError, "client"),
        (500, ServerError, "relay"),
        (503, UpstreamError, "provider"),
        (200, ServerError, "relay"),
    ],
)
def test_statuses_without_a_body(status: int, cls: type, fault: str) -> None:
    error = error_from_handshake(status, {}, b"", now=NOW)
    assert type(error) is cls
    assert error.fault == fault
    assert error.status == status
    assert str(status) in error.message


def test_the_body_code_wins_over_the_status() -> None:
    error = error_from_handshake(503, {}, _body("relay_shutting_down", "server_error"), now=NOW)
    assert type(error) is ServerError
    assert error.fault == "relay"


def test_headers_are_read_case_insensitively() -> None:
    error = error_from_handshake(
        429, {"x-request-id": "req_1", "retry-after": "12"}, _body("rate_limit_exceeded"), now=NOW
    )
    assert (error.request_id, error.retry_after) == ("req_1", 12)


def test_retry_after_forms() -> None:
    assert parse_retry_after("5", now=NOW) == 5
    assert parse_retry_after(" 2.5 ", now=NOW) == 2.5
    assert parse_retry_after("-3", now=NOW) == 0
    assert parse_retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now=1_800_000_000.0) == 30.0
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


def test_str_says_what_and_whose_fault() -> None:
    error = error_from_handshake(
        401, {"X-Request-Id": "req_9"}, _body("invalid_api_key", message="Bad key."), now=NOW
    )
    assert str(error) == "HTTP 401 invalid_api_key: Bad key. [fault: client, request id: req_9]"
