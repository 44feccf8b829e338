"""A client that hangs up while the relay dials for it: the dial stops, the lease comes back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp
import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, mock_channel_settings, running_relay


async def until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.01)


def handshakes(relay: RunningRelay, outcome: str) -> float:
    value = relay.relay.metrics.registry.get_sample_value(
        "rtrelay_handshakes_total", {"outcome": outcome}
    )
    assert value is not None
    return value


async def test_a_client_gone_during_the_dial_frees_its_lease_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    stalled = MockOptions(realtime_pacing=0, stall_handshake=30)
    async with MockProvider(stalled) as provider:
        settings = mock_channel_settings(
            provider.url, timeouts={"dial": 60, "handshake_deadline": 60}
        )
        async with running_relay(settings) as relay:
            store = relay.relay.parts.store
            _, key = await store.create_key(KeySpec(name="one-at-a-time", max_sessions=1))
            port = int(relay.url.rsplit(":", 1)[1])
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Authorization: Bearer " + key.encode() + b"\r\n\r\n"
            )
            await writer.drain()
            await until(lambda: len(provider.handshakes) == 1, "the relay to dial")
            writer.close()  # the client gives up; the provider stalls for 30 s more
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            await until(lambda: handshakes(relay, "client_gone") == 1, "the dial to be dropped")

            provider.options = MockOptions(realtime_pacing=0)
            auth = {"Authorization": f"Bearer {key}"}
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(relay.realtime(), headers=auth) as ws,
            ):
                assert (await ws.receive_json(timeout=10))["type"] == "session.created"
            assert handshakes(relay, "concurrency_limit_exceeded") == 0

            await until(lambda: not relay.relay.sessions, "the session to end")
            await relay.relay.parts.writer.flush()
            gone = [r for r in await store.refusals() if r.error_code == "client_gone"]
            assert [(r.http_status, r.key_prefix is not None) for r in gone] == [(499, True)]
            assert len(await store.sessions()) == 1  # the reconnect; no row for the dial
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    told = [r for r in caplog.records if getattr(r, "code", None) == "client_gone"]
    assert [(r.levelno, r.getMessage()) for r in told] == [(logging.INFO, "session refused")]
