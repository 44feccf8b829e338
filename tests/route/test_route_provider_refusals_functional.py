"""When failover is exhausted, the client sees the last provider refusal: status, body, Retry-After.

A lone channel's 429 or 500 used to reach the client as 503 ``upstream_unavailable``, the
provider's answer dropped. Now the last refusal is ``upstream_rejected`` (502 / 4502) with the
provider's status and error body in the message and its ``Retry-After`` passed on; only when no
provider answered at all is it ``upstream_unavailable``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from route_helpers import closed_port_url, http_refusal, openai_channel

from rtrelay.mock import MockOptions, MockProvider
from rtrelay.route.router import MAX_RETRY_AFTER
from support import read_error_and_close, running_relay, serving, settings_for

RATE_LIMITED = orjson.dumps(
    {
        "error": {
            "type": "requests",
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached for gpt-realtime: 100 sessions per minute.",
            "param": None,
        }
    }
)


@contextlib.asynccontextmanager
async def refusing_provider(
    status: int, body: bytes, headers: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """A provider stand-in that refuses every upgrade with ``status``, ``body`` and ``headers``."""

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(
            status=status, body=body, headers=headers, content_type="application/json"
        )

    app = web.Application()
    app.router.add_get("/v1/realtime", refuse)
    async with serving(app) as url:
        yield "ws" + url.removeprefix("http") + "/v1"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_a_lone_channels_refusal_reaches_the_client_with_its_status_and_body(
    status: int,
) -> None:
    async with MockProvider(MockOptions(refuse_status=status)) as provider:
        async with running_relay(settings_for(channels=[openai_channel("only", provider)])) as r:
            code, headers, error = await http_refusal(r)
            assert (code, error["code"], error["type"]) == (
                502,
                "upstream_rejected",
                "server_error",
            )
            assert f"HTTP {status}" in error["message"]
            assert '"error"' in error["message"]  # the provider's JSON error body, kept
            assert "Retry-After" not in headers  # the provider gave none
            await r.relay.parts.writer.flush()
            [refusal] = await r.relay.parts.store.refusals()
            assert (refusal.error_code, refusal.http_status) == ("upstream_rejected", 502)
            assert [(a.channel, a.outcome) for a in refusal.channels_tried] == [
                ("only", f"refused:{status}")
            ]


async def test_a_provider_429_passes_its_retry_after_and_error_on() -> None:
    async with (
        refusing_provider(429, RATE_LIMITED, {"Retry-After": "7"}) as url,
        running_relay(settings_for(channels=[openai_channel("only", url)])) as relay,
    ):
        status, headers, error = await http_refusal(relay)
        assert (status, error["code"]) == (502, "upstream_rejected")
        assert headers["Retry-After"] == "7"
        assert "HTTP 429" in error["message"]
        assert "rate_limit_exceeded" in error["message"]
        assert "100 sessions per minute" in error["message"]


async def test_in_event_style_the_refusal_is_an_error_event_and_4502() -> None:
    async with (
        refusing_provider(429, RATE_LIMITED, {"Retry-After": "7"}) as url,
        running_relay(settings_for(channels=[openai_channel("only", url)])) as relay,
        aiohttp.ClientSession() as http,
        http.ws_connect(relay.realtime(), headers={"Origin": "https://app.example"}) as ws,
    ):
        error, code, reason = await read_error_and_close(ws)
    assert error is not None
    assert error["error"]["code"] == "upstream_rejected"
    assert "HTTP 429" in error["error"]["message"]
    assert "rate_limit_exceeded" in error["error"]["message"]
    assert (code, reason) == (4502, "server_error.upstream_rejected")


async def test_after_failover_the_last_refusal_is_reported() -> None:
    async with (
        refusing_provider(429, RATE_LIMITED, {"Retry-After": "30"}) as first,
        MockProvider(MockOptions(refuse_status=503, refuse_body='{"error":"overloaded"}')) as last,
    ):
        settings = settings_for(
            channels=[openai_channel("a", first, priority=0), openai_channel("b", last, priority=1)]
        )
        async with running_relay(settings) as relay:
            status, headers, error = await http_refusal(relay)
            assert (status, error["code"]) == (502, "upstream_rejected")
            assert "HTTP 503" in error["message"] and "overloaded" in error["message"]
            assert "Retry-After" not in headers  # the last refusal gave none
            assert len(last.handshakes) == 1


async def test_a_refusal_outweighs_a_channel_that_never_answered() -> None:
    async with MockProvider(MockOptions(refuse_status=500)) as refusing:
        settings = settings_for(
            channels=[
                openai_channel("a", refusing, priority=0),
                openai_channel("b", closed_port_url(), priority=1),
            ]
        )
        async with running_relay(settings) as relay:
            status, _, error = await http_refusal(relay)
            assert (status, error["code"]) == (502, "upstream_rejected")
            assert "HTTP 500" in error["message"]


@pytest.mark.parametrize(
    ("sent", "passed_on"),
    [
        ("7", "7"),
        (" 2 ", "2"),
        ("1.2", "2"),
        ("0", "1"),
        ("99999999999", str(MAX_RETRY_AFTER)),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
    ],
)
async def test_only_a_usable_retry_after_is_passed_on(sent: str, passed_on: str | None) -> None:
    async with (
        refusing_provider(429, RATE_LIMITED, {"Retry-After": sent}) as url,
        running_relay(settings_for(channels=[openai_channel("only", url)])) as relay,
    ):
        status, headers, _ = await http_refusal(relay)
        assert status == 502
        assert headers.get("Retry-After") == passed_on
