"""The Origin rule through real handshakes: server and key lists, with and without Origin.

One rule (``Gate.check_origin``): a request without ``Origin`` is not a web page (browsers
always send one on a WebSocket handshake), so no list applies to it; a request with one must
be in every list that is set. The token endpoint applies the same rule, and a token minted
from a key carries that key's list to the browser that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, mock_channel_settings, read_error_and_close, running_relay

A = "https://a.example"
B = "https://b.example"


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0)) as p:
        yield p


async def connect(relay: RunningRelay, credential: str, origin: str | None) -> tuple[bool, Any]:
    """``(True, session.created)`` or ``(False, (error event, close code, reason))``."""
    headers = {"Authorization": f"Bearer {credential}"}
    if origin is not None:
        headers["Origin"] = origin
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(relay.realtime(), headers=headers) as ws,
    ):
        msg = await ws.receive(timeout=10)
        if msg.type is aiohttp.WSMsgType.TEXT:
            event = orjson.loads(msg.data)
            if event["type"] == "session.created":
                return True, event
            rest = await read_error_and_close(ws)
            return False, (event, rest[1], rest[2])
        return False, (None, msg.data, msg.extra)


CASES = [
    # server allowed_origins, key origins, request Origin, admitted
    pytest.param((), None, None, True, id="no-lists-no-origin"),
    pytest.param((), None, B, True, id="no-lists-any-origin"),
    pytest.param((), (A,), None, True, id="key-list-server-client-without-origin"),
    pytest.param((), (A,), A, True, id="key-list-listed-origin"),
    pytest.param((), (A,), B, False, id="key-list-other-origin"),
    pytest.param((), (A,), "null", False, id="key-list-opaque-origin"),
    pytest.param((A,), None, None, True, id="server-list-server-client-without-origin"),
    pytest.param((A,), None, A, True, id="server-list-listed-origin"),
    pytest.param((A,), None, B, False, id="server-list-other-origin"),
    pytest.param((A,), (B,), B, False, id="key-allows-but-server-refuses"),
    pytest.param((A, B), (B,), A, False, id="server-allows-but-key-refuses"),
    pytest.param((A, B), (B,), B, True, id="both-lists-allow"),
    pytest.param((A, B), (B,), None, True, id="both-lists-server-client-without-origin"),
]


@pytest.mark.parametrize(("server_origins", "key_origins", "origin", "admitted"), CASES)
async def test_origin_rule_on_the_websocket_handshake(
    provider: MockProvider,
    server_origins: tuple[str, ...],
    key_origins: tuple[str, ...] | None,
    origin: str | None,
    admitted: bool,
) -> None:
    settings = mock_channel_settings(provider.url, server={"allowed_origins": list(server_origins)})
    async with running_relay(settings) as relay:
        _, secret = await relay.relay.parts.store.create_key(
            KeySpec(name="origins", origins=key_origins)
        )
        ok, seen = await connect(relay, secret, origin)
        assert ok is admitted, seen
        if not admitted:
            error, code, reason = seen  # a request with Origin gets the event style
            assert error["error"]["code"] == "origin_not_allowed"
            assert (code, reason) == (4403, "invalid_request_error.origin_not_allowed")


@pytest.mark.parametrize(("server_origins", "key_origins", "origin", "admitted"), CASES)
async def test_origin_rule_on_the_token_endpoint_and_the_token_it_mints(
    provider: MockProvider,
    server_origins: tuple[str, ...],
    key_origins: tuple[str, ...] | None,
    origin: str | None,
    admitted: bool,
) -> None:
    settings = mock_channel_settings(provider.url, server={"allowed_origins": list(server_origins)})
    async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
        _, secret = await relay.relay.parts.store.create_key(
            KeySpec(name="origins", origins=key_origins)
        )
        headers = {"Authorization": f"Bearer {secret}"}
        if origin is not None:
            headers["Origin"] = origin
        url = f"{relay.url}/v1/realtime/client_secrets"
        async with http.post(url, json={}, headers=headers) as resp:
            body = await resp.json()
            assert (resp.status == 200) is admitted, body
            if not admitted:
                assert (resp.status, body["error"]["code"]) == (403, "origin_not_allowed")
        # Minted by the app server (no Origin), the token then meets the same rule in the browser.
        async with http.post(url, json={}, headers={"Authorization": f"Bearer {secret}"}) as resp:
            assert resp.status == 200
            token = (await resp.json())["value"]
        ok, seen = await connect(relay, token, origin)
        assert ok is admitted, seen
