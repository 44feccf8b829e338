"""Fixtures for rtrelay.client tests: a watched event loop, and the endpoints to test against."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections.abc import AsyncIterator
from typing import Any

import psutil
import pytest

from rtrelay.mock import MockOptions, MockProvider


class LoopWatch:
    """What reached the loop's exception handler, which must be nothing."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.calls.append(context)


def _inet_sockets() -> set[tuple[int, Any, Any]]:
    """This process's open TCP/UDP sockets, by descriptor and addresses."""
    return {(c.fd, c.laddr, c.raddr) for c in psutil.Process().net_connections(kind="inet")}


@pytest.fixture
async def loop_watch() -> AsyncIterator[LoopWatch]:
    """Debug mode on (as PYTHONASYNCIODEBUG=1), every exception-handler call collected.

    At teardown: no task of the test is left, no socket the test opened is still open,
    and after a garbage collection (which is when "Task exception was never retrieved"
    and "Unclosed client session" are reported) the handler has seen nothing.
    """
    loop = asyncio.get_running_loop()
    watch = LoopWatch()
    previous_handler = loop.get_exception_handler()
    previous_debug = loop.get_debug()
    loop.set_exception_handler(watch.handler)
    loop.set_debug(True)
    before = asyncio.all_tasks()
    sockets_before = _inet_sockets()
    try:
        yield watch
        left = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()}
        assert not left, f"tasks left running: {left}"
        leaked = _inet_sockets() - sockets_before
        assert not leaked, f"sockets left open: {leaked}"
        gc.collect()
        for _ in range(3):
            await asyncio.sleep(0)
        assert watch.calls == [], f"the loop's exception handler was called: {watch.calls}"
    finally:
        loop.set_exception_handler(previous_handler)
        loop.set_debug(previous_debug)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A realtime endpoint to test against, with the simulated provider behind it."""

    name: str
    url: str  # a base URL: the client appends /realtime?model=
    api_key: str
    provider: MockProvider


ENDPOINTS = ["mock", "relay"]
"""Where the end-to-end tests run: the simulated provider directly, and through rtrelay."""


@pytest.fixture(params=ENDPOINTS)
async def endpoint(request: pytest.FixtureRequest) -> AsyncIterator[Endpoint]:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        if request.param == "mock":
            yield Endpoint("mock", provider.url, "sk-test-client-key", provider)
        elif request.param == "relay":
            from rtrelay.ledger.keys import KeySpec
            from support import mock_channel_settings, running_relay

            async with running_relay(mock_channel_settings(provider.url)) as relay:
                _, key = await relay.relay.parts.store.create_key(KeySpec(name="client"))
                yield Endpoint("relay", relay.ws_url + "/v1", key, provider)
        else:  # pragma: no cover - a new endpoint needs its branch
            raise AssertionError(f"unknown endpoint {request.param}")
