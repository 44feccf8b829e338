"""Helpers for driving the simulated provider over a real socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from rtrelay.mock import MockProvider, silence_pcm16, speech_pcm16
from rtrelay.mock._session import SessionProtocol

PCM16_BYTES_PER_MS = 48


def speech_turn(speech_ms: int = 1000, *, lead_ms: int = 300, tail_ms: int = 800) -> bytes:
    """Silence, an utterance, then enough silence for server VAD to end the turn."""
    return silence_pcm16(lead_ms) + speech_pcm16(speech_ms) + silence_pcm16(tail_ms)


def append_events(pcm: bytes, chunk_ms: int = 100) -> list[dict[str, Any]]:
    size = chunk_ms * PCM16_BYTES_PER_MS
    return [
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + size]).decode()}
        for i in range(0, len(pcm), size)
    ]


async def open_session(
    http: aiohttp.ClientSession,
    provider: MockProvider,
    path: str = "/realtime?model=gpt-realtime",
    *,
    headers: dict[str, str] | None = None,
    protocols: tuple[str, ...] = ("realtime",),
    base: str | None = None,
) -> aiohttp.ClientWebSocketResponse:
    url = (base if base is not None else provider.url) + path
    return await http.ws_connect(
        url,
        headers=headers if headers is not None else {"Authorization": "Bearer sk-test"},
        protocols=protocols,
        max_msg_size=0,
        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
    )


async def next_event(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10.0) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    assert len(message.data.encode()) < 1024 * 1024
    event: dict[str, Any] = orjson.loads(message.data)
    return event


async def events_until(
    ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Events up to and including the first of type ``kind``."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not events or events[-1]["type"] != kind:
            events.append(await next_event(ws))
    return events


async def send_all(ws: aiohttp.ClientWebSocketResponse, events: list[dict[str, Any]]) -> None:
    for event in events:
        await ws.send_str(orjson.dumps(event).decode())


async def expect_close(
    ws: aiohttp.ClientWebSocketResponse, code: int, reason: str | None = None
) -> list[dict[str, Any]]:
    """Read until the server's close frame; return the events before it."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                events.append(orjson.loads(message.data))
                continue
            assert message.type is aiohttp.WSMsgType.CLOSE, message
            assert message.data == code
            if reason is not None:
                assert message.extra == reason
            return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


@contextlib.asynccontextmanager
async def mock_process(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``rtrelay mock --port 0 ARGS`` as a real process, and the URL it printed; killed if
    the test has not stopped it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtrelay.cli.main", "mock", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("rtrelay mock listening: ws://127.0.0.1:"), line
        yield process, line.split(": ", 1)[1].strip()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# --- driving a protocol without a socket -------------------------------------------------


def send_event(protocol: SessionProtocol, event: dict[str, Any] | bytes) -> list[dict[str, Any]]:
    data = event if isinstance(event, bytes) else orjson.dumps(event)
    return protocol.receive_text(data).replies


def append_audio(
    protocol: SessionProtocol, kind: str, pcm: bytes, chunk_ms: int = 100
) -> list[dict[str, Any]]:
    """Send ``pcm`` in ``chunk_ms`` appends of type ``kind``; the replies, in order."""
    events: list[dict[str, Any]] = []
    size = chunk_ms * PCM16_BYTES_PER_MS
    for i in range(0, len(pcm), size):
        audio = base64.b64encode(pcm[i : i + size]).decode()
        events += send_event(protocol, {"type": kind, "audio": audio})
    return events


def drain(protocol: SessionProtocol) -> list[dict[str, Any]]:
    """Stream everything queued, unpaced."""
    events: list[dict[str, Any]] = []
    while protocol.response_active:
        events += protocol.stream_step().events
    return events


def error_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``error`` object of the one event in ``events``, which must be an error."""
    assert types(events) == ["error"], events
    error: dict[str, Any] = events[0]["error"]
    return error
