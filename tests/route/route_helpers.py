"""Helpers for the routing tests: channel tables, keys, ledger rows and raw upgrades."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.records import SessionRow
from rtrelay.mock import MockProvider
from rtrelay.route.breaker import BreakerPolicy
from support import RunningRelay, upgrade_headers

AZURE_KEY = "az-provider-secret-0123456789abcdef"
OPENAI_KEY = "sk-test-provider-secret-0123456789"
ADMIN_TOKEN = "admin-token-for-route-tests-0123456789"


def origin_of(provider: MockProvider) -> str:
    """The provider as an Azure resource endpoint: ``ws://127.0.0.1:<port>`` (no ``/v1``)."""
    return "ws" + provider.http_url.removeprefix("http")


def openai_channel(name: str, provider: MockProvider | str, **fields: Any) -> dict[str, Any]:
    base = provider if isinstance(provider, str) else provider.url
    return {
        "name": name,
        "kind": "openai",
        "base_url": base,
        "api_key_env": "TEST_PROVIDER_KEY",
        "models": ["gpt-realtime"],
        **fields,
    }


def closed_port_url() -> str:
    """A ``ws://`` base URL nobody listens on: the port was bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ws://127.0.0.1:{port}/v1"


async def make_key(relay: RunningRelay) -> str:
    _, secret = await relay.relay.parts.store.create_key(KeySpec(name="route-tests"))
    return secret


async def session_rows(relay: RunningRelay) -> list[SessionRow]:
    """The ledger's session rows, newest first, once queued records are written."""
    await relay.relay.parts.writer.flush()
    return await relay.relay.parts.store.sessions()


def tried(row: SessionRow) -> list[tuple[str, str]]:
    return [(a.channel, a.outcome) for a in row.channels_tried]


async def first_event(ws: aiohttp.ClientWebSocketResponse[Any]) -> dict[str, Any]:
    msg = await ws.receive(timeout=10)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    event: dict[str, Any] = orjson.loads(msg.data)
    return event


async def http_refusal(
    relay: RunningRelay, model: str = "gpt-realtime", **headers: str
) -> tuple[int, CIMultiDictProxy[str], dict[str, Any]]:
    """Status, headers and ``error`` object of a refused plain (non-browser) upgrade."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(relay.realtime(model), headers=upgrade_headers(**headers)) as resp,
    ):
        body = await resp.json()
        return resp.status, CIMultiDictProxy(resp.headers.copy()), body["error"]


def pin_cooldowns(relay: RunningRelay, seconds: float) -> None:
    """Make every open circuit stay open exactly ``seconds``.

    Full jitter draws cooldowns from [0, cap], so a circuit may by chance half-open at
    once; tests that assert "skipped" pin the draw to the cap (the distribution itself
    is tested in test_route_breaker.py).
    """
    for breaker in relay.relay.router.breakers.values():
        breaker.policy = BreakerPolicy(base_cooldown=seconds, max_cooldown=seconds)
        breaker.rng = lambda: 1.0
