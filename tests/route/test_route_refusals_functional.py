"""What a client sees when routing cannot place it: all channels down, beta with GA-only channels.

Both handshake-error styles: HTTP for server clients, and for browser-like clients
(an ``Origin`` header or offered subprotocols) the ``error`` event and a 4xxx close.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from route_helpers import (
    closed_port_url,
    first_event,
    http_refusal,
    openai_channel,
    pin_cooldowns,
    tried,
)

from rtrelay.mock import MockOptions, MockProvider
from rtrelay.route.breaker import CircuitState
from support import RunningRelay, read_error_and_close, running_relay, settings_for

FAST = MockOptions(realtime_pacing=0)


def down_relay() -> Any:
    """A relay whose two channels are closed ports."""
    return running_relay(
        settings_for(
            channels=[
                openai_channel("a", closed_port_url(), priority=0),
                openai_channel("b", closed_port_url(), priority=1),
            ]
        )
    )


async def event_refusal(
    relay: RunningRelay, model: str = "gpt-realtime", **kwargs: Any
) -> tuple[dict[str, Any] | None, int | None, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(relay.realtime(model), **kwargs) as ws,
    ):
        return await read_error_and_close(ws)


async def test_all_channels_unreachable_is_503_with_retry_after() -> None:
    async with down_relay() as relay:
        status, headers, error = await http_refusal(relay)
        assert (status, error["code"], error["type"]) == (
            503,
            "upstream_unavailable",
            "server_error",
        )
        assert int(headers["Retry-After"]) >= 1
        assert headers["X-Request-Id"].startswith("req_")
        assert "a: connect" in error["message"] and "b: connect" in error["message"]
        await relay.relay.parts.writer.flush()
        [refusal] = await relay.relay.parts.store.refusals()
        assert (refusal.error_code, refusal.http_status) == ("upstream_unavailable", 503)
        assert [(a.channel, a.outcome) for a in refusal.channels_tried] == [
            ("a", "connect"),
            ("b", "connect"),
        ]


async def test_all_circuits_open_is_503_without_dialing_and_retry_after_the_cooldown() -> None:
    async with MockProvider(MockOptions(refuse_status=401)) as provider:
        settings = settings_for(channels=[openai_channel("only", provider)])
        async with running_relay(settings) as relay:
            pin_cooldowns(relay, 30.0)
            status, _, error = await http_refusal(relay)
            assert (status, error["code"]) == (502, "upstream_rejected")  # the 401 itself
            assert relay.relay.router.breakers["only"].state is CircuitState.OPEN
            status, headers, error = await http_refusal(relay)
            assert (status, error["code"]) == (503, "upstream_unavailable")
            assert 1 <= int(headers["Retry-After"]) <= 30
            assert len(provider.handshakes) == 1  # the open circuit was not dialed
            await relay.relay.parts.writer.flush()
            newest, _ = await relay.relay.parts.store.refusals()
            assert [(a.channel, a.outcome) for a in newest.channels_tried] == [
                ("only", "skipped:open")
            ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"Origin": "https://app.example"}},
        {"protocols": ("realtime", "openai-insecure-api-key.null")},
    ],
    ids=["origin", "subprotocols"],
)
async def test_all_channels_down_in_event_style_is_an_error_event_and_4503(
    kwargs: dict[str, Any],
) -> None:
    async with down_relay() as relay:
        error, code, reason = await event_refusal(relay, **kwargs)
        assert error is not None
        assert error["error"]["code"] == "upstream_unavailable"
        assert error["error"]["type"] == "server_error"
        assert (code, reason) == (4503, "server_error.upstream_unavailable")
        await relay.relay.parts.writer.flush()
        [refusal] = await relay.relay.parts.store.refusals()
        assert (refusal.http_status, refusal.close_code) == (None, 4503)


async def test_beta_client_and_ga_only_channels_is_beta_not_supported() -> None:
    async with MockProvider(FAST) as provider:
        settings = settings_for(channels=[openai_channel("ga", provider, shapes=["ga"])])
        async with running_relay(settings) as relay:
            status, _, error = await http_refusal(relay, **{"OpenAI-Beta": "realtime=v1"})
            assert (status, error["code"]) == (400, "beta_not_supported_by_channel")
            assert error["type"] == "invalid_request_error"
            error_event, code, reason = await event_refusal(
                relay, protocols=("realtime", "openai-beta.realtime-v1")
            )
            assert error_event is not None
            assert error_event["error"]["code"] == "beta_not_supported_by_channel"
            assert (code, reason) == (4400, "invalid_request_error.beta_not_supported_by_channel")
            assert provider.handshakes == []  # refused before any dial


@pytest.mark.parametrize(
    "beta_request",
    [
        {"headers": {"OpenAI-Beta": "realtime=v1"}},
        {"protocols": ("realtime", "openai-beta.realtime-v1")},
    ],
    ids=["header", "subprotocol"],
)
async def test_beta_client_goes_to_the_beta_capable_channel(beta_request: dict[str, Any]) -> None:
    async with MockProvider(FAST) as ga_only, MockProvider(FAST) as both:
        settings = settings_for(
            channels=[
                openai_channel("ga", ga_only, shapes=["ga"], priority=0),
                openai_channel("both", both, shapes=["ga", "beta"], priority=1),
            ]
        )
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime(), **beta_request) as ws:
                created = await first_event(ws)
            assert created["type"] == "session.created"
            assert "modalities" in created["session"]  # the beta shape
            async with http.ws_connect(relay.realtime()) as ws:
                assert (await first_event(ws))["session"]["type"] == "realtime"
            [beta_handshake] = both.handshakes
            assert beta_handshake.headers["OpenAI-Beta"] == "realtime=v1"
            [ga_handshake] = ga_only.handshakes
            assert "OpenAI-Beta" not in ga_handshake.headers
            await relay.relay.parts.writer.flush()
            rows = await relay.relay.parts.store.sessions()
            assert sorted((r.channel, r.shape, tuple(tried(r))) for r in rows) == [
                ("both", "beta", (("both", "ok"),)),
                ("ga", "ga", (("ga", "ok"),)),
            ]


async def test_unknown_model_is_404_model_not_found() -> None:
    async with MockProvider(FAST) as provider:
        async with running_relay(settings_for(channels=[openai_channel("c", provider)])) as relay:
            status, _, error = await http_refusal(relay, model="no-such-model")
            assert (status, error["code"], error["param"]) == (404, "model_not_found", "model")
            assert provider.handshakes == []
