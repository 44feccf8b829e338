"""The connection survives endpoints that are unreachable, unknown, silent or stalling.

Each test runs under ``loop_watch``: debug mode, and at the end no task left and
nothing seen by the loop's exception handler.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random

import pytest
from client_servers import raw_tcp_server, silent, stall_mid_handshake, unused_port

from conftest import LoopWatch
from rtrelay.client import (
    ConnectionState,
    ConnectTimeoutError,
    InvalidStateError,
    NetworkError,
    RealtimeConnection,
    RealtimeError,
    RetryDecision,
    backoff_delays,
)

pytestmark = pytest.mark.timeout(30)

FAST = {"min_reconnection_delay": 0.01, "max_reconnection_delay": 0.05}


class Recorder:
    """on_error / on_state callbacks that remember what they saw, and when."""

    def __init__(self) -> None:
        self.errors: list[tuple[float, RealtimeError]] = []
        self.states: list[ConnectionState] = []

    def on_error(self, error: RealtimeError) -> None:
        self.errors.append((asyncio.get_running_loop().time(), error))

    def on_state(self, state: ConnectionState) -> None:
        self.states.append(state)


async def test_unreachable_port_retries_then_raises_network_error(loop_watch: LoopWatch) -> None:
    seen = Recorder()
    conn = RealtimeConnection(
        f"ws://127.0.0.1:{unused_port()}/v1",
        model="gpt-realtime",
        max_retries=2,
        on_error=seen.on_error,
        on_state=seen.on_state,
        **FAST,
    )
    with pytest.raises(NetworkError) as info:
        async with conn:
            pytest.fail("must not open")
    assert info.value.fault == "network"
    assert info.value.status is None
    assert "cannot connect" in info.value.message
    assert len(seen.errors) == 3  # the attempt, then max_retries retries
    assert all(isinstance(error, NetworkError) for _, error in seen.errors)
    assert conn.state is ConnectionState.CLOSED
    assert seen.states[0] is ConnectionState.CONNECTING
    assert seen.states[-1] is ConnectionState.CLOSED
    assert conn.error is info.value


async def test_dns_failure_is_a_network_error(loop_watch: LoopWatch) -> None:
    conn = RealtimeConnection("ws://no-such-host.invalid/v1", max_retries=0)
    with pytest.raises(NetworkError, match="DNS lookup failed") as info:
        await conn.connect()
    assert info.value.fault == "network"
    await conn.close()
    assert conn.state is ConnectionState.CLOSED


async def test_silent_server_hits_connection_timeout_and_its_sockets_are_closed(
    loop_watch: LoopWatch,
) -> None:
    seen = Recorder()
    async with raw_tcp_server(silent) as (port, closed):
        conn = RealtimeConnection(
            f"ws://127.0.0.1:{port}/v1",
            connection_timeout=0.3,
            max_retries=1,
            on_error=seen.on_error,
            **FAST,
        )
        with pytest.raises(ConnectTimeoutError) as info:
            await conn.connect()
        assert isinstance(info.value, TimeoutError)
        assert isinstance(info.value, NetworkError)
        assert len(seen.errors) == 2
        # Each timed-out attempt dropped its TCP connection: the server saw EOF.
        assert len(closed) == 2
        async with asyncio.timeout(5):
            for gone in closed:
                await gone.wait()
        await conn.close()


async def test_close_while_the_handshake_stalls_cancels_the_attempt(loop_watch: LoopWatch) -> None:
    async with raw_tcp_server(stall_mid_handshake) as (port, closed):
        conn = RealtimeConnection(f"ws://127.0.0.1:{port}/v1", connection_timeout=None)
        connecting = asyncio.create_task(conn.connect())
        async with asyncio.timeout(5):
            while not closed:
                await asyncio.sleep(0.01)
        assert conn.state is ConnectionState.CONNECTING
        await conn.close()
        assert conn.state is ConnectionState.CLOSED
        with pytest.raises(InvalidStateError):
            await connecting
        async with asyncio.timeout(5):
            await closed[0].wait()  # the half-open socket was dropped, not leaked
        await conn.close()  # idempotent


async def test_close_during_backoff_returns_promptly(loop_watch: LoopWatch) -> None:
    seen = Recorder()
    conn = RealtimeConnection(
        f"ws://127.0.0.1:{unused_port()}/v1",
        min_reconnection_delay=60,
        max_reconnection_delay=60,
        on_error=seen.on_error,
    )
    connecting = asyncio.create_task(conn.connect())
    async with asyncio.timeout(5):
        while not seen.errors:
            await asyncio.sleep(0.01)
    assert conn.state is ConnectionState.CONNECTING  # waiting 60 s to retry
    async with asyncio.timeout(5):
        await conn.close()
    with pytest.raises(InvalidStateError):
        await connecting


async def test_retries_wait_the_configured_backoff(loop_watch: LoopWatch) -> None:
    seen = Recorder()
    conn = RealtimeConnection(
        f"ws://127.0.0.1:{unused_port()}/v1",
        max_retries=4,
        min_reconnection_delay=0.05,
        max_reconnection_delay=0.2,
        reconnection_delay_grow_factor=2,
        rng=random.Random(7),
        on_error=seen.on_error,
    )
    with pytest.raises(NetworkError):
        await conn.connect()
    expected = backoff_delays(0.05, 0.2, 2, random.Random(7))
    times = [at for at, _ in seen.errors]
    assert len(times) == 5
    for before, after in itertools.pairwise(times):
        delay = next(expected)
        # Lower bound exact (the sleep); upper bound generous (a slow machine).
        assert delay <= after - before + 0.005 < delay + 5


async def test_a_custom_retry_policy_decides(loop_watch: LoopWatch) -> None:
    decided: list[RealtimeError] = []

    def policy(error: RealtimeError) -> RetryDecision:
        decided.append(error)
        return RetryDecision.after(0) if len(decided) < 3 else RetryDecision.give_up()

    conn = RealtimeConnection(
        f"ws://127.0.0.1:{unused_port()}/v1", max_retries=None, retry_policy=policy
    )
    with pytest.raises(NetworkError):
        await conn.connect()
    assert len(decided) == 3


async def test_broken_callbacks_and_policy_never_reach_the_loop(
    loop_watch: LoopWatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(_: object) -> None:
        raise ZeroDivisionError("user bug")

    def bad_policy(_: RealtimeError) -> RetryDecision:
        raise KeyError("policy bug")

    conn = RealtimeConnection(
        f"ws://127.0.0.1:{unused_port()}/v1",
        on_error=explode,
        on_state=explode,
        retry_policy=bad_policy,
    )
    with caplog.at_level(logging.ERROR, logger="rtrelay.client"), pytest.raises(NetworkError):
        await conn.connect()
    await conn.close()
    messages = [record.getMessage() for record in caplog.records]
    assert any("on_error callback failed" in m for m in messages)
    assert any("on_state callback failed" in m for m in messages)
    assert any("retry_policy failed" in m for m in messages)


async def test_many_connections_to_a_dead_port_in_parallel(loop_watch: LoopWatch) -> None:
    port = unused_port()
    conns = [
        RealtimeConnection(f"ws://127.0.0.1:{port}/v1", max_retries=1, **FAST) for _ in range(20)
    ]
    results = await asyncio.gather(*(c.connect() for c in conns), return_exceptions=True)
    assert all(isinstance(r, NetworkError) for r in results)
    # Closing all of them at once, in every state they are in, is fine too.
    await asyncio.gather(*(c.close() for c in conns))
    assert {c.state for c in conns} == {ConnectionState.CLOSED}


async def test_close_before_the_first_attempt_even_starts(loop_watch: LoopWatch) -> None:
    conn = RealtimeConnection(f"ws://127.0.0.1:{unused_port()}/v1")
    connecting = asyncio.create_task(conn.connect())
    await asyncio.sleep(0)  # connect() ran and scheduled the supervisor; it has not run yet
    assert conn.state is ConnectionState.CLOSED
    await conn.close()
    assert conn.state is ConnectionState.CLOSED
    with pytest.raises(InvalidStateError):
        await connecting
    with pytest.raises(InvalidStateError):
        await conn.send({"type": "x"})
