"""Before the upgrade: a request deadline, a cap on waiting connections, JSON for garbage.

Raw sockets on 127.0.0.1 play the clients that never finish (or never start) a
request; a real WebSocket session through the real simulated provider shows the
relay still serves afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, mock_channel_settings, running_relay, serve_process

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=200)) as p:
        yield p


def port_of(relay: RunningRelay) -> int:
    return int(relay.url.rsplit(":", 1)[1])


async def connect(port: int) -> Stream:
    return await asyncio.open_connection("127.0.0.1", port)


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes (bounded: 10 s)."""
    async with asyncio.timeout(10):
        return await reader.read()


async def close(stream: Stream) -> None:
    stream[1].close()
    with contextlib.suppress(ConnectionError):
        await stream[1].wait_closed()


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 0.05) -> None:
    """Send ``data`` a byte at a time until it is sent or the server hangs up."""
    with contextlib.suppress(ConnectionError):
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every)


def closed_early(relay: RunningRelay, reason: str) -> float:
    value = relay.relay.metrics.registry.get_sample_value(
        "rtrelay_pre_upgrade_closed_total", {"reason": reason}
    )
    assert value is not None
    return value


async def a_session_works(relay: RunningRelay) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.realtime()) as ws:
        assert (await ws.receive_json(timeout=10))["type"] == "session.created"


async def test_silent_slow_and_unfinished_requests_are_closed_at_the_request_deadline(
    provider: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = mock_channel_settings(provider.url, auth="none", timeouts={"request": 0.5})
    async with running_relay(settings) as relay:
        port = port_of(relay)
        silent, slow, body, kept = [await connect(port) for _ in range(4)]
        head = b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "
        sender = asyncio.create_task(trickle(slow[1], head + b"a" * 400))
        # a body announced and never finished
        body[1].write(
            b"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        # a request answered on a kept-alive connection
        kept[1].write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            assert await until_closed(silent[0]) == b""  # nothing sent: nothing said
            answer = await until_closed(slow[0])
            assert await until_closed(body[0]) == b""
            async with asyncio.timeout(10):
                first = await kept[0].readuntil(b'{"status": "ok"}')
            # idle between requests is keep-alive's business (75 s), not the request deadline
            await asyncio.sleep(1.5)
            kept[1].write(b"GET /healthz HTTP/1.1\r\n")  # ... and the next one stalls
            second = await until_closed(kept[0])
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            for stream in (silent, slow, body, kept):
                await close(stream)
        for timed_out in (answer, second):
            status_line, _, rest = timed_out.partition(b"\r\n")
            headers, _, payload = rest.partition(b"\r\n\r\n")
            assert status_line == b"HTTP/1.1 408 Request Timeout"
            assert b"x-request-id: req_" in headers.lower()
            assert orjson.loads(payload)["error"]["code"] == "request_timeout"
        assert first.startswith(b"HTTP/1.1 200 ")
        assert closed_early(relay, "request_timeout") == 4
        await a_session_works(relay)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    logged = [r for r in caplog.records if getattr(r, "event", None) == "pre_upgrade_closed"]
    assert {r.reason for r in logged} == {"request_timeout"}  # type: ignore[attr-defined]
    assert sum(r.connections for r in logged) == 4  # type: ignore[attr-defined]


async def test_past_the_pending_cap_the_oldest_waiting_connection_makes_room(
    provider: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    cap, extra = 8, 4
    settings = mock_channel_settings(
        provider.url,
        auth="none",
        timeouts={"request": 60},  # far away: only the cap can free a slot here
        limits={"max_pending_connections": cap},
    )
    async with running_relay(settings) as relay:
        port = port_of(relay)
        flood = [await connect(port) for _ in range(cap + extra)]
        try:
            for reader, _ in flood[:extra]:
                assert await until_closed(reader) == b""
            await a_session_works(relay)  # the newest connection: it evicts, it is never evicted
            assert closed_early(relay, "pending_cap") == extra + 1
            assert closed_early(relay, "request_timeout") == 0
            await a_session_works(relay)
        finally:
            for stream in flood:
                await close(stream)
    logged = [r for r in caplog.records if getattr(r, "reason", None) == "pending_cap"]
    assert logged
    assert logged[0].levelno == logging.WARNING
    assert sum(r.connections for r in logged) == extra + 1  # type: ignore[attr-defined]


async def test_an_unreadable_request_gets_the_tables_json_400(
    provider: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    settings = mock_channel_settings(provider.url, auth="none")
    async with running_relay(settings) as relay:
        stream = await connect(port_of(relay))
        try:
            stream[1].write(
                b"GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Odd: a\x7fb\r\n\r\n"
            )
            answer = await until_closed(stream[0])
        finally:
            await close(stream)
        status_line, _, rest = answer.partition(b"\r\n")
        headers, _, payload = rest.partition(b"\r\n\r\n")
        assert b" 400 " in status_line
        assert b"x-request-id: req_" in headers.lower()
        assert b"application/json" in headers
        assert orjson.loads(payload)["error"]["code"] == "malformed_request"
        assert closed_early(relay, "malformed_request") == 1
        # a readable request but an impossible upgrade (no key): refused before any dial
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                relay.realtime(),
                headers={
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Protocol": "realtime",
                },
            ) as resp,
        ):
            assert resp.status == 400
            assert resp.headers["X-Request-Id"].startswith("req_")
            assert (await resp.json())["error"]["code"] == "malformed_request"
        assert not provider.handshakes
        await a_session_works(relay)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_under_ulimit_n_128_a_flood_of_silent_sockets_does_not_lock_out_a_session(
    tmp_path: Path,
) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(
        f"""
[auth]
mode = "none"
[store]
url = "sqlite+aiosqlite:///{tmp_path / "relay.db"}"
[logging]
level = "WARNING"
[[channels]]
name = "sim"
kind = "mock"
models = ["gpt-realtime"]
"""
    )
    async with serve_process("--config", str(config), nofile=128) as (_, port):
        flood = [await connect(port) for _ in range(110)]
        try:
            async with aiohttp.ClientSession() as http, asyncio.timeout(30):
                url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
                async with http.ws_connect(url) as ws:
                    assert (await ws.receive_json())["type"] == "session.created"
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    metrics = await resp.text()
        finally:
            for stream in flood:
                await close(stream)
    evicted = next(
        line
        for line in metrics.splitlines()
        if line.startswith('rtrelay_pre_upgrade_closed_total{reason="pending_cap"}')
    )
    assert float(evicted.rsplit(" ", 1)[1]) >= 110 - 128 // 2
