"""Every refusal rtrelay can send maps to the right exception, with the right fields.

The servers here answer exactly as DESIGN.md's error table says rtrelay does (the
bodies and codes are rendered by ``rtrelay.errors`` itself), once in the HTTP style
and once in the event style (101, ``error`` event, close).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from client_servers import Served, drain, event_refusal, refusing, websocket_server

from conftest import LoopWatch
from rtrelay import errors as table
from rtrelay.client import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionClosedError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RealtimeConnection,
    ServerError,
    SessionExpiredError,
    UpstreamError,
)

pytestmark = pytest.mark.timeout(30)

# code -> (exception class, fault, retried by the default policy)
EXPECTED: dict[str, tuple[type[APIError], str, bool]] = {
    "missing_api_key": (AuthenticationError, "client", False),
    "invalid_api_key": (AuthenticationError, "client", False),
    "origin_not_allowed": (PermissionDeniedError, "client", False),
    "model_not_allowed": (PermissionDeniedError, "client", False),
    "missing_model": (BadRequestError, "client", False),
    "invalid_value": (BadRequestError, "client", False),
    "invalid_event": (BadRequestError, "client", False),
    "wrong_protocol_route": (BadRequestError, "client", False),
    "session_start_timeout": (BadRequestError, "client", False),
    "websocket_upgrade_required": (BadRequestError, "client", False),
    "malformed_request": (BadRequestError, "client", False),
    "request_timeout": (BadRequestError, "client", False),
    "client_gone": (BadRequestError, "client", False),  # recorded, never read by a client
    "model_not_found": (NotFoundError, "client", False),
    "call_not_found": (NotFoundError, "client", False),
    "rate_limit_exceeded": (RateLimitError, "client", True),
    "concurrency_limit_exceeded": (RateLimitError, "client", True),
    "insufficient_quota": (QuotaExceededError, "client", False),
    "upstream_rejected": (UpstreamError, "provider", True),
    "upstream_unavailable": (UpstreamError, "provider", True),
    "upstream_timeout": (UpstreamError, "provider", True),
    "upstream_disconnected": (UpstreamError, "provider", True),
    "beta_not_supported_by_channel": (BadRequestError, "client", False),
    "message_too_large": (BadRequestError, "client", False),
    "slow_consumer": (ConnectionClosedError, "client", False),
    "session_expired": (SessionExpiredError, "relay", True),
    "relay_shutting_down": (ServerError, "relay", True),
    "ended_by_operator": (ConnectionClosedError, "relay", False),
    "limits_unavailable": (ServerError, "relay", True),
    "internal_error": (ServerError, "relay", True),
}

HTTP_ROWS = [cls for cls in table.ERROR_CLASSES if cls.http_status is not None]
CLOSE_ROWS = [cls for cls in table.ERROR_CLASSES if cls.close_code != 1000]


def test_every_row_of_the_table_has_an_expectation() -> None:
    assert {cls.code for cls in table.ERROR_CLASSES} - {"idle_timeout"} == set(EXPECTED)


def _http_refusal(row: type[table.RelayError], retry_after: int = 0) -> tuple[int, dict, dict]:
    exc = row(retry_after=retry_after if row.http_status in (429, 503) else None)
    assert row.http_status is not None
    headers = {**exc.http_headers(), "X-Request-Id": f"req_{row.code}"}
    return row.http_status, exc.to_http_body(), headers


@pytest.mark.parametrize("row", HTTP_ROWS, ids=lambda row: row.code)
async def test_http_refusal_maps_to_its_class(
    row: type[table.RelayError], loop_watch: LoopWatch
) -> None:
    status, body, headers = _http_refusal(row, retry_after=7)
    cls, fault, _ = EXPECTED[row.code]
    async with refusing(status, body, headers) as served:
        conn = RealtimeConnection(served.base_url, api_key="sk-secret", max_retries=0)
        with pytest.raises(APIError) as info:
            async with conn:
                pass
    error = info.value
    assert type(error) is cls
    assert error.fault == fault
    assert error.status == status
    assert error.close_code is None
    assert error.code == row.code
    assert error.type == row.type
    assert error.message == row.default_message
    assert error.request_id == f"req_{row.code}"
    assert error.retry_after == (7 if "Retry-After" in headers else None)
    assert "sk-secret" not in str(error) + repr(error)


@pytest.mark.parametrize("row", CLOSE_ROWS, ids=lambda row: row.code)
async def test_event_refusal_maps_to_its_class(
    row: type[table.RelayError], loop_watch: LoopWatch
) -> None:
    exc = row()
    event = exc.to_event("event_1")
    cls, fault, _ = EXPECTED[row.code]
    refusal = event_refusal(event, row.close_code, exc.close_reason())
    async with websocket_server(refusal, request_id=f"req_{row.code}") as served:
        conn = RealtimeConnection(served.base_url, max_retries=0)
        received = []
        with pytest.raises(APIError) as info:
            await drain(conn, received)
    error = info.value
    assert received == [event]  # the explanation is delivered as an event too
    assert type(error) is cls
    assert error.fault == fault
    assert error.status is None
    assert error.close_code == row.close_code
    assert error.close_reason == exc.close_reason()
    assert error.code == row.code
    assert error.type == row.type
    assert error.message == row.default_message
    assert error.request_id == f"req_{row.code}"
    assert error.body == event


async def test_idle_timeout_close_1000_ends_the_stream_cleanly(loop_watch: LoopWatch) -> None:
    exc = table.IdleTimeout()
    event = exc.to_event("event_1")
    async with websocket_server(event_refusal(event, 1000, exc.close_reason())) as served:
        async with RealtimeConnection(served.base_url, max_retries=3) as conn:
            received = [ev async for ev in conn]
        assert served.attempts == 1  # a clean close is not reconnected
    assert received == [event]
    assert conn.error is None
    assert conn.close_code == 1000


@pytest.mark.parametrize("row", HTTP_ROWS, ids=lambda row: row.code)
async def test_http_refusals_are_retried_only_when_retrying_can_help(
    row: type[table.RelayError], loop_watch: LoopWatch
) -> None:
    status, body, headers = _http_refusal(row, retry_after=0)
    _, _, retried = EXPECTED[row.code]
    async with refusing(status, body, headers) as served:
        conn = RealtimeConnection(
            served.base_url, max_retries=2, min_reconnection_delay=0, max_reconnection_delay=0
        )
        with pytest.raises(APIError):
            await conn.connect()
        await conn.close()
        assert served.attempts == (3 if retried else 1)


@pytest.mark.parametrize("row", CLOSE_ROWS, ids=lambda row: row.code)
async def test_error_closes_are_retried_only_when_retrying_can_help(
    row: type[table.RelayError], loop_watch: LoopWatch
) -> None:
    exc = row()
    _, _, retried = EXPECTED[row.code]
    refusal = event_refusal(exc.to_event("event_1"), row.close_code, exc.close_reason())
    async with websocket_server(refusal) as served:
        conn = RealtimeConnection(
            served.base_url, max_retries=2, min_reconnection_delay=0, max_reconnection_delay=0
        )
        async with conn:
            with pytest.raises(APIError):
                async for _ in conn:
                    pass
        assert served.attempts == (3 if retried else 1)
        assert conn.reconnects == (2 if retried else 0)


async def test_rate_limit_waits_retry_after_before_retrying(loop_watch: LoopWatch) -> None:
    status, body, headers = _http_refusal(table.RateLimitExceeded, retry_after=1)
    times: list[float] = []
    async with refusing(status, body, headers) as served:
        conn = RealtimeConnection(
            served.base_url,
            max_retries=1,
            min_reconnection_delay=0.01,
            max_reconnection_delay=0.01,
            on_error=lambda _: times.append(asyncio.get_running_loop().time()),
        )
        with pytest.raises(RateLimitError) as info:
            await conn.connect()
        await conn.close()
    assert info.value.retry_after == 1
    assert served.attempts == 2
    assert times[1] - times[0] >= 0.99  # Retry-After, not the 10 ms backoff


async def test_refusal_body_that_is_not_json_still_maps_by_status(loop_watch: LoopWatch) -> None:
    async with refusing(502, "<html>Bad Gateway</html>", {"X-Request-Id": "req_x"}) as served:
        conn = RealtimeConnection(served.base_url, max_retries=0)
        with pytest.raises(UpstreamError) as info:
            await conn.connect()
        await conn.close()
    assert info.value.status == 502
    assert info.value.code is None
    assert "Bad Gateway" in info.value.message
    assert info.value.request_id == "req_x"


async def test_a_huge_refusal_body_is_read_only_up_to_64_kib(loop_watch: LoopWatch) -> None:
    message = "x" * (200 * 1024)
    body = {
        "error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": message}
    }
    async with refusing(401, body) as served:
        conn = RealtimeConnection(served.base_url, max_retries=0)
        with pytest.raises(AuthenticationError) as info:
            await conn.connect()
        await conn.close()
    # Truncated JSON cannot be parsed: the status still decides the class.
    assert info.value.code is None
    assert len(info.value.message) < 1000


async def test_redirects_are_refused_not_followed(loop_watch: LoopWatch) -> None:
    followed: list[web.Request] = []

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request)
        return web.Response(text="should not be reached")

    async with refusing(307, "", {"Location": "/elsewhere"}) as served:
        conn = RealtimeConnection(served.base_url, api_key="sk-secret", max_retries=3)
        with pytest.raises(BadRequestError, match="redirect") as info:
            await conn.connect()
        await conn.close()
        assert served.attempts == 1
    assert info.value.status == 307
    assert followed == []


async def test_openai_style_3000_close_after_a_bad_key(loop_watch: LoopWatch) -> None:
    # OpenAI accepts the upgrade, then sends the error and closes 3000 (protocol.md §3).
    event = {
        "type": "error",
        "event_id": "event_1",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "message": "Incorrect API key provided: sk-...AAAA.",
            "param": None,
            "event_id": None,
        },
    }
    refusal = event_refusal(event, 3000, "invalid_request_error.invalid_api_key")
    async with websocket_server(refusal) as served:
        conn = RealtimeConnection(served.base_url, max_retries=5, min_reconnection_delay=0)
        with pytest.raises(AuthenticationError) as info:
            await drain(conn)
        assert served.attempts == 1
    assert info.value.close_code == 3000
    assert info.value.code == "invalid_api_key"


async def test_beta_shape_disabled_close_4000(loop_watch: LoopWatch) -> None:
    event = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "beta_api_shape_disabled",
            "message": "The Realtime Beta API is no longer supported.",
            "param": None,
        },
    }
    refusal = event_refusal(event, 4000, "invalid_request_error.beta_api_shape_disabled")
    async with websocket_server(refusal) as served:
        conn = RealtimeConnection(served.base_url, beta=True, max_retries=3)
        with pytest.raises(BadRequestError) as info:
            await drain(conn)
        assert served.attempts == 1
        assert served.headers[0].get("OpenAI-Beta") == "realtime=v1"
    assert info.value.close_code == 4000
    assert info.value.fault == "client"


async def test_non_fatal_error_events_are_delivered_not_raised(loop_watch: LoopWatch) -> None:
    async def session(ws: web.WebSocketResponse, served: Served) -> None:
        error = {
            "type": "invalid_request_error",
            "code": "input_audio_buffer_commit_empty",
            "message": "Expected at least 100ms of audio",
        }
        await ws.send_str(json.dumps({"type": "error", "error": error}))
        await ws.send_str(json.dumps({"type": "session.created", "session": {}}))
        await ws.close(code=1000)

    async with websocket_server(session) as served:
        async with RealtimeConnection(served.base_url) as conn:
            types = [ev["type"] async for ev in conn]
    assert types == ["error", "session.created"]
    assert conn.error is None
