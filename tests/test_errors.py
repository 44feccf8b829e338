"""The error table renders the same way everywhere (DESIGN.md "Errors: one table")."""

from __future__ import annotations

import pytest

from rtrelay import errors

TABLE = [
    # code, HTTP status, close code after 101
    ("missing_api_key", 401, 4401),
    ("invalid_api_key", 401, 4401),
    ("origin_not_allowed", 403, 4403),
    ("model_not_allowed", 403, 4403),
    ("model_not_found", 404, 4404),
    ("call_not_found", 404, 4404),
    ("missing_model", 400, 4400),
    ("rate_limit_exceeded", 429, 4429),
    ("concurrency_limit_exceeded", 429, 4429),
    ("insufficient_quota", 429, 4429),
    ("upstream_rejected", 502, 4502),
    ("upstream_unavailable", 503, 4503),
    ("upstream_timeout", 504, 4504),
    ("upstream_disconnected", None, 1011),
    ("beta_not_supported_by_channel", 400, 4400),
    ("message_too_large", None, 1009),
    ("slow_consumer", None, 1008),
    ("idle_timeout", None, 1000),
    ("session_expired", None, 1001),
    ("relay_shutting_down", 503, 1001),
    ("ended_by_operator", None, 1008),
    ("limits_unavailable", 503, 4503),
    ("malformed_request", 400, 4400),
    ("request_timeout", 408, 4400),
    ("client_gone", 499, 4400),
    ("wrong_protocol_route", 400, 4400),
    ("session_start_timeout", 400, 4400),
]


@pytest.mark.parametrize(("code", "status", "close_code"), TABLE)
def test_table_row(code: str, status: int | None, close_code: int) -> None:
    cls = errors.error_for_code(code)
    assert cls is not None
    err = cls("boom", param="p")
    assert err.http_status == status
    assert err.close_code == close_code
    assert errors.is_sendable_close_code(err.close_code)
    assert err.to_http_body() == {
        "error": {"type": err.type, "code": code, "message": "boom", "param": "p"}
    }
    event = err.to_event("event_1", "client_evt")
    assert event == {
        "type": "error",
        "event_id": "event_1",
        "error": {
            "type": err.type,
            "code": code,
            "message": "boom",
            "param": "p",
            "event_id": "client_evt",
        },
    }
    assert err.close_reason() == f"{err.type}.{code}"
    assert len(err.close_reason().encode()) <= 123


def test_the_live_error_event_names_the_client_event_as_live_does() -> None:
    event = errors.ModelNotAllowed("no", param="session.model").to_live_event("e1", "c1")
    assert event == {
        "type": "error",
        "event_id": "e1",
        "error": {
            "type": "invalid_request_error",
            "code": "model_not_allowed",
            "message": "no",
            "param": "session.model",
            "client_event_id": "c1",
        },
        "client_event_id": "c1",
    }


def test_every_class_is_in_the_table() -> None:
    codes = {row[0] for row in TABLE} | {
        "internal_error",
        "websocket_upgrade_required",
        "invalid_value",
        "invalid_event",
    }
    assert {cls.code for cls in errors.ERROR_CLASSES} == codes


def test_a_frame_the_provider_sent_too_large_is_not_blamed_on_the_client() -> None:
    own, theirs = errors.MessageTooLarge(), errors.UpstreamMessageTooLarge()
    assert (
        (theirs.code, theirs.close_code)
        == (own.code, own.close_code)
        == ("message_too_large", 1009)
    )
    assert own.type == "invalid_request_error"
    assert theirs.type == "server_error"
    assert "provider" in theirs.message


def test_invalid_api_key_reason_matches_openai_form() -> None:
    assert errors.InvalidApiKey().close_reason() == "invalid_request_error.invalid_api_key"


def test_retry_after_becomes_a_header() -> None:
    assert errors.RateLimitExceeded(retry_after=7).http_headers() == {"Retry-After": "7"}
    assert errors.ModelNotFound().http_headers() == {}


@pytest.mark.parametrize("code", [1005, 1006, 1015, 1004, 999, 2000, 5000])
def test_reserved_close_codes_are_never_sent(code: int) -> None:
    assert not errors.is_sendable_close_code(code)
