"""Router.connect with a real dialer: half-open trial slots survive cancellation and bugs; the
provider key is the one read at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest

from rtrelay.config import Channel
from rtrelay.mock import MockProvider
from rtrelay.route.breaker import CircuitState
from rtrelay.route.dial import Dialer
from rtrelay.route.router import Connected, Router


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """Accepts TCP connections and never answers; yields its ws:// base and a 'got one' event."""
    connected = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # until the dialer goes away
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/v1", connected
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def started_dialer() -> AsyncIterator[Dialer]:
    dialer = Dialer(max_frame_bytes=1 << 20, heartbeat=None)
    await dialer.start()
    try:
        yield dialer
    finally:
        await dialer.close()


def half_open(router: Router, name: str) -> None:
    breaker = router.breakers[name]
    breaker.record_failure("refused:401: HTTP 401", trip=True)
    breaker.open_until = 0.0  # the cooldown has passed
    assert breaker.state is CircuitState.HALF_OPEN


async def connect(router: Router) -> object:
    return await router.connect(
        "gpt-realtime", beta=False, request_id="req_t", dial_timeout=10, deadline=10
    )


async def test_a_cancelled_trial_gives_its_slot_back() -> None:
    async with silent_server() as (base, connected), started_dialer() as dialer:
        channel = Channel(name="c", base_url=base, models={"gpt-realtime": "gpt-realtime"})
        router = Router([channel], dialer, rng=random.Random(1), environ={})
        half_open(router, "c")
        task = asyncio.create_task(connect(router))
        async with asyncio.timeout(5):
            await connected.wait()
        assert not router.breakers["c"].allow()  # the trial is in flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert router.breakers["c"].allow()  # the next session may be the trial


async def test_a_trial_that_fails_to_build_its_request_gives_its_slot_back() -> None:
    async with started_dialer() as dialer:
        channel = Channel(
            name="c",
            kind="openai-compatible",
            url_template="ws://127.0.0.1:9/rt/{model}",
            models={"gpt-realtime": "gpt-realtime"},
        )
        # Config rejects unknown placeholders; force one in to make building the request fail.
        object.__setattr__(channel, "url_template", "ws://127.0.0.1:9/rt/{deployment}")
        router = Router([channel], dialer, rng=random.Random(1), environ={})
        half_open(router, "c")
        with pytest.raises(KeyError):
            await connect(router)
        assert router.breakers["c"].allow()


async def test_a_dial_sends_the_key_read_at_start_up_not_the_environment_now() -> None:
    environ = {"PROVIDER_KEY": "sk-at-start-up-0123456789"}
    async with MockProvider() as provider, started_dialer() as dialer:
        channel = Channel(
            name="c",
            base_url=provider.url,
            api_key_env="PROVIDER_KEY",
            models={"gpt-realtime": "gpt-realtime"},
        )
        router = Router([channel], dialer, rng=random.Random(1), environ=environ)
        environ["PROVIDER_KEY"] = "sk-rotated-later-0123456789"
        connected = await connect(router)
        assert isinstance(connected, Connected)
        await connected.ws.close()
    assert provider.handshakes[-1].headers["Authorization"] == "Bearer sk-at-start-up-0123456789"
