"""The simulated provider's GPT-Live faults, for a relay's duration metering and refusals."""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import random
from typing import Any

import aiohttp
import orjson
import pytest
from mock_wire import expect_close, next_event, open_session, speech_turn, types

from rtrelay.cli import mock as cli_mock
from rtrelay.mock import LiveProtocol, MockOptions, MockProvider, silence_pcm16
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._live import UsageTicker

FAST = MockOptions(realtime_pacing=0, live_usage_interval=0.3)
CHUNK = 100 * 48  # 100 ms of pcm16 at 24 kHz
START: dict[str, Any] = {"model": "gpt-live-1", "instructions": "Be brief."}


def started() -> LiveProtocol:
    protocol = LiveProtocol(now=1_700_000_000, ids=IdFactory(random.Random(7)))
    start = {"type": "session.start", "session": START}
    assert protocol.receive_text(orjson.dumps(start)).replies[0]["type"] == "session.started"
    return protocol


def append(protocol: LiveProtocol, pcm: bytes) -> None:
    audio = base64.b64encode(pcm).decode()
    protocol.receive_text(orjson.dumps({"type": "session.input_audio.append", "audio": audio}))


def test_usage_ticker_reorder_fault_sends_the_previous_value_once() -> None:
    protocol = started()
    ticker = UsageTicker(protocol, reorder=True)
    first = ticker.tick()
    append(protocol, silence_pcm16(500))
    second = ticker.tick()
    append(protocol, silence_pcm16(500))
    third = ticker.tick()
    seconds = [[e["usage"]["seconds"] for e in tick] for tick in (first, second, third)]
    assert seconds == [[0.0], [0.5, 0.0], [1.0]]
    assert second[0]["event_id"] != second[1]["event_id"]
    fresh = LiveProtocol(now=0)
    assert UsageTicker(fresh, reorder=False).tick() == []  # nothing before session.start


@pytest.mark.parametrize(
    "path", ["/live/sessions", "/realtime/translations?model=gpt-realtime-translate"]
)
async def test_refusal_fault_applies_to_live_and_translation(
    path: str, http: aiohttp.ClientSession
) -> None:
    options = dataclasses.replace(FAST, refuse_status=429, refuse_body='{"error": "slow down"}')
    async with MockProvider(options) as provider:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await open_session(http, provider, path)
    assert refused.value.status == 429
    assert provider.sessions == []


async def send_audio(ws: aiohttp.ClientWebSocketResponse, pcm: bytes) -> None:
    for start in range(0, len(pcm), CHUNK):
        chunk = base64.b64encode(pcm[start : start + CHUNK]).decode()
        event = {"type": "session.input_audio.append", "audio": chunk}
        await ws.send_str(orjson.dumps(event).decode())


async def usage_events(options: MockOptions, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    """The usage frames of a Live session that hears 0.5 s of silence, then (once a usage
    event counted it) a 2.1 s turn answered with 1 s of audio: up to the fourth frame
    reporting the final 3.6 s."""
    async with MockProvider(options) as provider:
        ws = await open_session(http, provider, "/live/sessions")
        await ws.send_str(orjson.dumps({"type": "session.start", "session": START}).decode())
        assert (await next_event(ws))["type"] == "session.started"
        events: list[dict[str, Any]] = []

        async def until(seconds: float, count: int) -> None:
            async with asyncio.timeout(20):
                while (
                    sum(
                        e["type"] == "session.usage.updated" and e["usage"]["seconds"] >= seconds
                        for e in events
                    )
                    < count
                ):
                    events.append(await next_event(ws))

        await send_audio(ws, silence_pcm16(500))
        await until(0.5, 1)
        await send_audio(ws, speech_turn(1000, lead_ms=300, tail_ms=800))
        await until(3.6, 4)
        await ws.close()
    return [e for e in events if e["type"] == "session.usage.updated"]


async def test_repeat_usage_sends_each_usage_frame_twice(http: aiohttp.ClientSession) -> None:
    usage = await usage_events(dataclasses.replace(FAST, repeat_usage=True), http)
    assert len(usage) % 2 == 0
    assert usage[0::2] == usage[1::2]  # the same frame, event ids included
    assert len({e["event_id"] for e in usage}) == len(usage) // 2


async def test_reorder_usage_sends_an_older_value_after_a_newer_one(
    http: aiohttp.ClientSession,
) -> None:
    usage = await usage_events(dataclasses.replace(FAST, reorder_usage=True), http)
    seconds = [e["usage"]["seconds"] for e in usage]
    drops = [i for i in range(1, len(seconds)) if seconds[i] < seconds[i - 1]]
    assert len(drops) == 1, seconds
    assert seconds[drops[0]] == seconds[drops[0] - 2]  # the previous value, again
    assert len({e["event_id"] for e in usage}) == len(usage)


async def test_no_usage_events(http: aiohttp.ClientSession) -> None:
    options = dataclasses.replace(FAST, no_usage_events=True)
    async with MockProvider(options) as provider:
        ws = await open_session(http, provider, "/live/sessions")
        await ws.send_str(orjson.dumps({"type": "session.start", "session": START}).decode())
        await send_audio(ws, speech_turn(1000, lead_ms=300, tail_ms=800))
        await asyncio.sleep(1.0)  # over three usage intervals
        await ws.send_str(orjson.dumps({"type": "session.close"}).decode())
        events = await expect_close(ws, 1000)
    assert "session.usage.updated" not in types(events)
    assert events[-1]["type"] == "session.closed"
    assert events[-1]["usage"]["seconds"] > 0


def test_command_line_usage_faults() -> None:
    parser = argparse.ArgumentParser()
    cli_mock.register(parser.add_subparsers())
    args = parser.parse_args(
        ["mock", "--live-usage-interval", "0.5", "--repeat-usage", "--reorder-usage",
         "--no-usage-events", "--live-delegate-turns", "--live-reflect-audio"]
    )  # fmt: skip
    options = cli_mock.options_from_args(args)
    assert (options.live_usage_interval, options.repeat_usage) == (0.5, True)
    assert (options.reorder_usage, options.no_usage_events) == (True, True)
    assert options.live_delegate_turns
    assert options.live_reflect_audio
    defaults = cli_mock.options_from_args(parser.parse_args(["mock"]))
    assert (defaults.live_usage_interval, defaults.repeat_usage) == (5.0, False)
    assert (defaults.reorder_usage, defaults.no_usage_events) == (False, False)
    assert not defaults.live_delegate_turns
    assert not defaults.live_reflect_audio
    with pytest.raises(ValueError, match="live_usage_interval"):
        MockOptions(live_usage_interval=0)
