"""Run the simulated provider on a real socket: in a test (``MockProvider``) or as a server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

from rtrelay.mock._app import create_app
from rtrelay.mock._options import MockOptions
from rtrelay.mock._records import CallRecord, HandshakeRecord, SessionRecord
from rtrelay.mock._state import STATE, MockState
from rtrelay.wire import CALLS_PATH

__all__ = ["MockProvider", "serve"]

# Sessions are closed with 1001 on shutdown first; this only bounds stragglers.
SHUTDOWN_TIMEOUT: Final = 2.0


class MockProvider:
    """The simulated provider listening on ``host:port`` (port 0: an ephemeral port).

    Use as ``async with MockProvider(MockOptions(realtime_pacing=0)) as provider:`` and
    point clients at ``provider.url``. Assigning ``provider.options`` changes the behaviour
    of connections made afterwards; open sessions keep the options they started with.

    Args:
        options: behaviour and faults.
        host: interface to listen on.
        port: port to listen on; 0 picks a free one.
        record: keep handshakes, sessions and client events for inspection.
    """

    def __init__(
        self,
        options: MockOptions | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        self._app = create_app(options, record=record)
        self._state: MockState = self._app[STATE]
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("MockProvider already started")
        family, kind, proto, _, address = socket.getaddrinfo(
            self._host, self._requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            self._port = sock.getsockname()[1]
            runner = web.AppRunner(
                self._app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
            )
            await runner.setup()
        except BaseException:
            sock.close()
            raise
        self._runner = runner
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MockProvider not started")
        return self._port

    @property
    def http_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL for SDKs (``websocket_base_url``); the endpoint is ``url + "/realtime"``."""
        return "ws" + self.http_url.removeprefix("http") + "/v1"

    @property
    def options(self) -> MockOptions:
        return self._state.options

    @options.setter
    def options(self, options: MockOptions) -> None:
        self._state.options = options

    @property
    def handshakes(self) -> list[HandshakeRecord]:
        return self._state.handshakes

    @property
    def events_received(self) -> list[dict[str, Any]]:
        return self._state.events_received

    @property
    def sessions(self) -> list[SessionRecord]:
        return self._state.sessions

    @property
    def active_sessions(self) -> int:
        return self._state.active_sessions

    @property
    def calls(self) -> list[CallRecord]:
        """Every WebRTC call made, in order (live ones still updating)."""
        return self._state.call_records

    @property
    def active_calls(self) -> int:
        return len(self._state.calls)

    @property
    def calls_url(self) -> str:
        """Where to ``POST`` a WebRTC offer (protocol.md §10)."""
        return self.http_url + CALLS_PATH

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no session or call is open (e.g. after a client or relay closed).

        Raises:
            TimeoutError: sessions were still open after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            await self._state.idle.wait()


async def serve(
    options: MockOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    on_ready: Callable[[MockProvider], None] | None = None,
) -> None:
    """Run the simulated provider until SIGINT/SIGTERM or cancellation.

    Nothing is recorded, so memory stays flat however long it runs.

    Args:
        options: behaviour and faults.
        host: interface to listen on.
        port: port to listen on.
        on_ready: called once listening, e.g. to print ``provider.url``.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    async with MockProvider(options, host=host, port=port, record=False) as provider:
        installed: list[signal.Signals] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
        try:
            if on_ready is not None:
                on_ready(provider)
            await stop.wait()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
