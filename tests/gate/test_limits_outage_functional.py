"""Redis or the store unreachable on the handshake path: an explicit policy, never a 500.

``[redis] on_error = "closed"`` (the default) refuses keys with limits with 503
``limits_unavailable`` + ``Retry-After`` (4503 in the event style); ``"open"`` admits them on
the process's own limits and counts it in ``rtrelay_limits_fallback_total``. A Redis that
comes back is used again without a restart (a real ``redis-server`` is stopped and started
on the same port). The store behind a TCP link that the test cuts and restores: an uncached
key lookup is ``limits_unavailable``, on the WebSocket path and the token endpoint alike.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from outages import TcpProxy, proxied, redis_server
from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import (
    RunningRelay,
    free_port,
    mock_channel_settings,
    read_error_and_close,
    running_relay,
    upgrade_headers,
)

LIMITED = KeySpec(name="limited", max_sessions=5, sessions_per_minute=600)


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0)) as p:
        yield p


def redis_settings(provider: MockProvider, port: int, on_error: str, **sections: Any) -> Any:
    return mock_channel_settings(
        provider.url, redis={"url": f"redis://127.0.0.1:{port}/0", "on_error": on_error}, **sections
    )


async def key(relay: RunningRelay, spec: KeySpec = LIMITED) -> str:
    _, secret = await relay.relay.parts.store.create_key(spec)
    return secret


async def handshake(relay: RunningRelay, secret: str) -> tuple[int, CIMultiDict[str], Any]:
    """A server client's upgrade: 101 (closed at once) or the refusal's status, headers, error."""
    headers = upgrade_headers(Authorization=f"Bearer {secret}")
    async with (
        aiohttp.ClientSession() as http,
        http.get(relay.realtime(), headers=headers) as resp,
    ):
        body = None if resp.status == 101 else (await resp.json())["error"]
        return resp.status, resp.headers.copy(), body


async def session_created(relay: RunningRelay, secret: str) -> bool:
    auth = {"Authorization": f"Bearer {secret}"}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(relay.realtime(), headers=auth) as ws,
    ):
        msg = await ws.receive(timeout=10)
        return msg.type is aiohttp.WSMsgType.TEXT and b"session.created" in msg.data.encode()


async def readyz(relay: RunningRelay) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{relay.url}/readyz") as resp:
        return resp.status, await resp.json()


async def metric(relay: RunningRelay, name: str, **labels: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{relay.url}/metrics") as resp:
        text = await resp.text()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}\{{{wanted}\}} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name}{{{wanted}}} not exported"
    return float(match.group(1))


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# -- Redis unreachable --------------------------------------------------------------------


async def test_closed_refuses_keys_with_limits_503_with_retry_after(
    provider: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_relay(redis_settings(provider, free_port(), "closed")) as relay:
        secret = await key(relay)
        status, headers, error = await handshake(relay, secret)
        assert (status, error["code"], error["type"]) == (503, "limits_unavailable", "server_error")
        assert int(headers["Retry-After"]) >= 1
        assert headers["X-Request-Id"].startswith("req_")
        # Browsers (Origin) get the event style: the error event, then 4503.
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(
                relay.realtime(),
                protocols=("realtime", f"openai-insecure-api-key.{secret}"),
                origin="https://app.example",
            ) as ws,
        ):
            event, code, reason = await read_error_and_close(ws)
        assert event is not None and event["error"]["code"] == "limits_unavailable"
        assert (code, reason) == (4503, "server_error.limits_unavailable")
        status, body = await readyz(relay)
        assert status == 503 and any("redis unreachable" in p for p in body["problems"])
        assert await metric(relay, "rtrelay_handshakes_total", outcome="limits_unavailable") == 2
        # A key with no limit has nothing Redis must check: it is still admitted.
        assert await session_created(relay, await key(relay, KeySpec(name="unlimited")))
        assert provider.handshakes and len(provider.handshakes) == 1
    no_tracebacks(caplog)


async def test_open_admits_on_local_limits_and_counts_it(
    provider: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_relay(redis_settings(provider, free_port(), "open")) as relay:
        secret = await key(relay, KeySpec(name="one", max_sessions=1, sessions_per_minute=600))
        auth = {"Authorization": f"Bearer {secret}"}
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(relay.realtime(), headers=auth) as ws,
        ):
            first = orjson.loads((await ws.receive(timeout=10)).data)
            assert first["type"] == "session.created"
            # The local limit is still a limit: a second session of a max_sessions=1 key waits.
            status, _, error = await handshake(relay, secret)
            assert (status, error["code"]) == (429, "concurrency_limit_exceeded")
        assert await metric(relay, "rtrelay_limits_fallback_total", limit="concurrency") >= 2
        assert await metric(relay, "rtrelay_limits_fallback_total", limit="rate") >= 1
        status, body = await readyz(relay)
        assert status == 200 and body["problems"] == []
        assert any("redis unreachable" in n for n in body["notes"])
    no_tracebacks(caplog)


# -- Redis comes back: no restart -----------------------------------------------------------


async def until_admitted(relay: RunningRelay, secret: str, bound: float = 30.0) -> int:
    """Handshakes until one is admitted (a generous bound); how many were refused first."""
    refused = 0
    async with asyncio.timeout(bound):
        while True:
            status, _, error = await handshake(relay, secret)
            if status == 101:
                return refused
            assert (status, error["code"]) == (503, "limits_unavailable")
            refused += 1
            await asyncio.sleep(0.2)


async def test_a_redis_that_comes_back_is_used_again_without_a_restart(
    provider: MockProvider,
) -> None:
    port = free_port()
    async with running_relay(redis_settings(provider, port, "closed")) as relay:
        secret = await key(relay)
        async with redis_server(port):
            assert (await handshake(relay, secret))[0] == 101
            assert (await readyz(relay))[0] == 200
        # Stopped: refused, and /readyz says why.
        status, headers, error = await handshake(relay, secret)
        assert (status, error["code"]) == (503, "limits_unavailable") and headers["Retry-After"]
        assert (await readyz(relay))[0] == 503
        async with redis_server(port):  # the same port, the same relay process
            await until_admitted(relay, secret)
            assert (await readyz(relay))[0] == 200
            assert relay.relay.parts.limits is not None
            assert relay.relay.parts.limits.unreachable is None


# -- the store unreachable on the handshake path -------------------------------------------


@pytest.fixture
async def store_link(postgres_session_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A cuttable link to the session's PostgreSQL and the store URL that goes through it."""
    async with proxied(postgres_session_url) as (link, url):
        yield link, url


async def test_an_unreachable_store_is_limits_unavailable_then_recovers(
    provider: MockProvider,
    store_link: tuple[TcpProxy, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link, url = store_link
    settings = mock_channel_settings(
        provider.url, store={"url": url, "journal": str(tmp_path / "journal.jsonl")}
    )
    async with running_relay(settings) as relay:
        secret = await key(relay, KeySpec(name="store-outage"))  # never used yet: not cached
        link.cut()
        status, headers, error = await handshake(relay, secret)
        assert (status, error["code"]) == (503, "limits_unavailable")
        assert int(headers["Retry-After"]) >= 1
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{relay.url}/v1/realtime/client_secrets",
                json={},
                headers={"Authorization": f"Bearer {secret}"},
            ) as resp:
                body = await resp.json()
                assert (resp.status, body["error"]["code"]) == (503, "limits_unavailable")
                assert resp.headers["Retry-After"]
        assert (await readyz(relay))[0] == 503
        link.restore()
        await until_admitted(relay, secret)
    no_tracebacks(caplog)
