"""Failover before the first frame, and circuit breakers, through the real relay.

Two channels in priority order, each a real simulated provider (or a closed port);
the client never learns that the first one failed, the ledger does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from route_helpers import (
    closed_port_url,
    first_event,
    http_refusal,
    openai_channel,
    pin_cooldowns,
    session_rows,
    tried,
)

from rtrelay.mock import MockOptions, MockProvider
from rtrelay.route.breaker import CircuitState
from support import RunningRelay, running_relay, settings_for

FAST = MockOptions(realtime_pacing=0)


@contextlib.asynccontextmanager
async def two_channels(
    first: MockOptions | None, **timeouts: float
) -> AsyncIterator[tuple[RunningRelay, MockProvider | None, MockProvider]]:
    """Relay → ``first`` (priority 0; ``None``: a closed port) and ``second`` (priority 1)."""
    async with contextlib.AsyncExitStack() as stack:
        bad = None if first is None else await stack.enter_async_context(MockProvider(first))
        good = await stack.enter_async_context(MockProvider(FAST))
        settings = settings_for(
            channels=[
                openai_channel("first", bad or closed_port_url(), priority=0),
                openai_channel("second", good, priority=1),
            ],
            timeouts={"dial": 5.0, "handshake_deadline": 10.0, **timeouts},
        )
        relay = await stack.enter_async_context(running_relay(settings))
        yield relay, bad, good


async def open_session(relay: RunningRelay, **kwargs: Any) -> dict[str, Any]:
    """Connect, read the first event, close; the first event is returned."""
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.realtime(), **kwargs) as ws:
        return await first_event(ws)


def state(relay: RunningRelay, name: str) -> CircuitState:
    return relay.relay.router.breakers[name].state


@pytest.mark.parametrize(
    ("first", "outcome"),
    [
        (MockOptions(refuse_status=500), "refused:500"),
        (MockOptions(refuse_status=503), "refused:503"),
        (MockOptions(refuse_status=429), "refused:429"),
        (MockOptions(stall_handshake=2.5), "timeout"),
        (None, "connect"),
    ],
    ids=["500", "503", "429", "stall", "closed-port"],
)
async def test_a_failing_first_channel_lands_the_session_on_the_second(
    first: MockOptions | None, outcome: str
) -> None:
    async with two_channels(first, dial=1.0) as (relay, bad, good):
        event = await open_session(relay)
        assert event["type"] == "session.created"  # a normal session, nothing else
        assert len(good.handshakes) == 1
        if bad is not None:
            assert len(bad.handshakes) == 1
        [row] = await session_rows(relay)
        assert row.channel == "second"
        assert tried(row) == [("first", outcome), ("second", "ok")]
        assert row.channels_tried[0].detail is not None
        assert row.channels_tried[0].detail.endswith(" ms")
        # One failure is not yet an outage: the first channel stays in rotation.
        assert state(relay, "first") is CircuitState.CLOSED
        assert state(relay, "second") is CircuitState.CLOSED


async def test_a_401_marks_the_channel_unhealthy_and_it_is_skipped_next_time() -> None:
    async with two_channels(MockOptions(refuse_status=401)) as (relay, bad, good):
        pin_cooldowns(relay, 60.0)
        assert bad is not None
        assert (await open_session(relay))["type"] == "session.created"
        assert state(relay, "first") is CircuitState.OPEN
        assert (await open_session(relay))["type"] == "session.created"
        assert len(bad.handshakes) == 1  # never dialed again while open
        assert len(good.handshakes) == 2
        newer, older = await session_rows(relay)
        assert tried(older) == [("first", "refused:401"), ("second", "ok")]
        assert tried(newer) == [("first", "skipped:open"), ("second", "ok")]
        assert "refused:401" in (relay.relay.router.breakers["first"].last_error or "")


async def test_consecutive_failures_open_the_circuit_then_a_half_open_trial_closes_it() -> None:
    async with two_channels(MockOptions(refuse_status=500)) as (relay, bad, _good):
        assert bad is not None
        pin_cooldowns(relay, 60.0)
        for _ in range(3):  # the default threshold
            assert (await open_session(relay))["type"] == "session.created"
        assert state(relay, "first") is CircuitState.OPEN
        await open_session(relay)
        assert len(bad.handshakes) == 3
        rows = await session_rows(relay)
        assert tried(rows[0]) == [("first", "skipped:open"), ("second", "ok")]

        # The provider recovers; once the cooldown is over one session is the trial.
        bad.options = FAST
        relay.relay.router.breakers["first"].open_until = 0.0  # the cooldown has passed
        assert state(relay, "first") is CircuitState.HALF_OPEN
        assert (await open_session(relay))["type"] == "session.created"
        assert state(relay, "first") is CircuitState.CLOSED
        assert len(bad.handshakes) == 4
        rows = await session_rows(relay)
        assert tried(rows[0]) == [("first", "ok")]
        assert rows[0].channel == "first"


async def test_a_failed_trial_reopens_the_circuit_and_the_session_still_lands() -> None:
    async with two_channels(MockOptions(refuse_status=500)) as (relay, bad, _good):
        assert bad is not None
        pin_cooldowns(relay, 60.0)
        for _ in range(3):
            await open_session(relay)
        breaker = relay.relay.router.breakers["first"]
        breaker.open_until = 0.0
        assert (await open_session(relay))["type"] == "session.created"
        assert state(relay, "first") is CircuitState.OPEN
        assert breaker.openings == 2
        rows = await session_rows(relay)
        assert tried(rows[0]) == [("first", "refused:500"), ("second", "ok")]


async def test_half_open_admits_one_trial_while_concurrent_sessions_skip() -> None:
    # The trial stalls; sessions arriving meanwhile must not pile onto the sick channel.
    async with two_channels(MockOptions(refuse_status=500), dial=3.0) as (relay, bad, _good):
        assert bad is not None
        pin_cooldowns(relay, 60.0)
        for _ in range(3):
            await open_session(relay)
        bad.options = MockOptions(realtime_pacing=0, stall_handshake=1.0)
        relay.relay.router.breakers["first"].open_until = 0.0
        trial = asyncio.create_task(open_session(relay))
        async with asyncio.timeout(5):
            while len(bad.handshakes) < 4:  # the trial has reached the provider
                await asyncio.sleep(0.01)
        others = await asyncio.gather(*(open_session(relay) for _ in range(3)))
        assert [e["type"] for e in others] == ["session.created"] * 3
        assert (await trial)["type"] == "session.created"
        assert len(bad.handshakes) == 4
        assert state(relay, "first") is CircuitState.CLOSED
        rows = await session_rows(relay)
        skipped = [r for r in rows[:4] if tried(r) == [("first", "skipped:open"), ("second", "ok")]]
        assert len(skipped) == 3
        assert [tried(r) for r in rows[:4] if r.channel == "first"] == [[("first", "ok")]]


async def test_a_non_retryable_refusal_stops_failover() -> None:
    # 400/404 judge the request itself: another channel would refuse it the same way.
    async with two_channels(MockOptions(refuse_status=404)) as (relay, _bad, good):
        status, _, error = await http_refusal(relay)
        assert (status, error["code"]) == (502, "upstream_rejected")
        assert "HTTP 404" in error["message"] and "model_not_found" in error["message"]
        assert good.handshakes == []
        await relay.relay.parts.writer.flush()
        [refusal] = await relay.relay.parts.store.refusals()
        assert [(a.channel, a.outcome) for a in refusal.channels_tried] == [
            ("first", "refused:404")
        ]


async def test_every_channel_401_is_upstream_rejected_with_the_provider_status() -> None:
    async with (
        MockProvider(MockOptions(refuse_status=401)) as one,
        MockProvider(MockOptions(refuse_status=403)) as two,
    ):
        settings = settings_for(
            channels=[
                openai_channel("one", one, priority=0),
                openai_channel("two", two, priority=1),
            ]
        )
        async with running_relay(settings) as relay:
            status, _, error = await http_refusal(relay)
            assert (status, error["code"]) == (502, "upstream_rejected")
            assert "HTTP 403" in error["message"]  # the last refusal's status and body
            assert len(one.handshakes) == len(two.handshakes) == 1
            assert state(relay, "one") is CircuitState.OPEN
            assert state(relay, "two") is CircuitState.OPEN


async def test_the_handshake_deadline_bounds_failover() -> None:
    stall = MockOptions(stall_handshake=2.0)
    async with MockProvider(stall) as one, MockProvider(stall) as two, MockProvider(FAST) as three:
        settings = settings_for(
            channels=[
                openai_channel("one", one, priority=0),
                openai_channel("two", two, priority=1),
                openai_channel("three", three, priority=2),
            ],
            timeouts={"dial": 0.6, "handshake_deadline": 1.0},
        )
        async with running_relay(settings) as relay:
            status, _, error = await http_refusal(relay)
            assert (status, error["code"]) == (504, "upstream_timeout")
            assert len(one.handshakes) == len(two.handshakes) == 1
            assert three.handshakes == []  # the deadline ran out before its turn
            await relay.relay.parts.writer.flush()
            [refusal] = await relay.relay.parts.store.refusals()
            assert [(a.channel, a.outcome) for a in refusal.channels_tried] == [
                ("one", "timeout"),
                ("two", "timeout"),
            ]
