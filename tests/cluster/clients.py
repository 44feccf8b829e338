"""The cluster's clients: run in the client host (``ip netns exec``), driven over stdin/stdout.

Each stdin line is a JSON command with an ``id``; its answer is a JSON line with the same
``id``. Commands run concurrently. Things that happen by themselves (a session dropped, a
reconnecting client's state or finished response) are lines without an ``id``.

- ``open`` ``sid url key``: an ``openai`` SDK session, answered once ``session.created``
  came (or with the refusal's status and code); a drop later says ``{"sid", "closed"}``.
- ``respond`` ``sid``: ``response.create`` on it; the response id, or the error code.
- ``close`` ``sid``.
- ``handshakes`` ``url key n``: ``n`` upgrades one after another; seconds to each 101
  (and status/code of any refusal).
- ``hammer`` ``sid url key``: handshakes one after another until ``stop`` ``sid``.
- ``resilient`` ``sid url key``: an ``rtrelay.client`` session that reconnects, asking for
  one response after another until ``stop`` ``sid``; reports each response and state.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

import aiohttp
import orjson
from openai import AsyncOpenAI

from rtrelay.client import ConnectionState, RealtimeClient, RealtimeConnection, RealtimeError

MODEL = "gpt-realtime"


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


class Driver:
    def __init__(self) -> None:
        self.sessions: dict[str, Any] = {}
        self.events: dict[str, asyncio.Queue[Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stops: dict[str, asyncio.Event] = {}
        self.contexts: dict[str, contextlib.AsyncExitStack] = {}
        self.codes: dict[str, list[str]] = {}
        """``error.code`` of each error event a session got."""

    async def run(self, command: dict[str, Any]) -> None:
        try:
            answer = await getattr(self, "op_" + command["op"])(command)
        except Exception as exc:  # reported, not raised: the test reads it
            answer = {"ok": False, "exception": f"{type(exc).__name__}: {exc}"}
        say({"id": command["id"], **answer})

    async def op_open(self, c: dict[str, Any]) -> dict[str, Any]:
        sid = c["sid"]
        client = AsyncOpenAI(api_key=c["key"], websocket_base_url=c["url"], max_retries=0)
        stack = contextlib.AsyncExitStack()
        try:
            conn = await stack.enter_async_context(client.realtime.connect(model=MODEL))
        except Exception as exc:
            await stack.aclose()
            return {"ok": False, **refusal(exc)}
        first = await conn.recv()
        assert first.type == "session.created", first.type
        self.sessions[sid], self.contexts[sid] = conn, stack
        self.events[sid] = asyncio.Queue()
        self.spawn(self.read(sid, conn))
        return {"ok": True}

    async def read(self, sid: str, conn: Any) -> None:
        codes = self.codes[sid] = []
        close: int | None = None
        try:
            async for event in conn:
                if event.type == "error":
                    codes.append(event.error.code)
                await self.events[sid].put(event)
        except Exception as exc:
            close = getattr(getattr(exc, "rcvd", None), "code", None) or 1006
        if close is None:
            close = getattr(conn._connection, "close_code", None) or 1006
        await self.events[sid].put(None)
        say({"sid": sid, "closed": close, "codes": codes})

    async def op_respond(self, c: dict[str, Any]) -> dict[str, Any]:
        sid = c["sid"]
        try:
            await self.sessions[sid].response.create()
        except Exception:  # closed already: say why, if an error event said
            return {"ok": False, "code": (self.codes.get(sid) or [None])[-1], "closed": True}
        async with asyncio.timeout(c.get("timeout", 20)):
            while True:
                event = await self.events[sid].get()
                if event is None:
                    return {"ok": False, "closed": True}
                if event.type == "error":
                    return {"ok": False, "code": event.error.code}
                if event.type == "response.done":
                    return {"ok": True, "response": event.response.id}

    async def op_close(self, c: dict[str, Any]) -> dict[str, Any]:
        stack = self.contexts.pop(c["sid"], None)
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()
        return {"ok": True}

    async def op_handshakes(self, c: dict[str, Any]) -> dict[str, Any]:
        times: list[float] = []
        refused: list[list[Any]] = []
        headers = {"Authorization": f"Bearer {c['key']}"}
        url = f"{c['url']}/realtime?model={MODEL}"
        async with aiohttp.ClientSession() as http:
            for _ in range(c["n"]):
                began = time.perf_counter()
                try:
                    async with http.ws_connect(url, headers=headers) as ws:
                        times.append(time.perf_counter() - began)
                        await ws.receive()  # session.created: the session really started
                except aiohttp.WSServerHandshakeError as exc:
                    refused.append([exc.status, exc.message])
        return {"ok": True, "times": times, "refused": refused}

    async def op_hammer(self, c: dict[str, Any]) -> dict[str, Any]:
        """Handshakes one after another (each closed after ``session.created``) until
        ``stop``: how many were upgraded, and the status of each that was not."""
        stop = self.stops[c["sid"]] = asyncio.Event()
        headers = {"Authorization": f"Bearer {c['key']}"}
        url = f"{c['url']}/realtime?model={MODEL}"
        upgraded = 0
        failed: list[Any] = []
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                try:
                    async with http.ws_connect(url, headers=headers) as ws:
                        await ws.receive()
                        upgraded += 1
                except aiohttp.WSServerHandshakeError as exc:
                    failed.append(exc.status)
                except aiohttp.ClientError as exc:
                    failed.append(type(exc).__name__)
                await asyncio.sleep(c.get("pause", 0.05))
        return {"ok": True, "upgraded": upgraded, "failed": failed}

    async def op_resilient(self, c: dict[str, Any]) -> dict[str, Any]:
        sid = c["sid"]
        stop = self.stops[sid] = asyncio.Event()

        def state(s: ConnectionState) -> None:
            say({"sid": sid, "state": s.name})

        connection = RealtimeConnection(
            c["url"],
            api_key=c["key"],
            model=MODEL,
            min_reconnection_delay=0.2,
            max_reconnection_delay=1.0,
            max_retries=None,
            heartbeat=2.0,
            connection_timeout=8.0,
            on_state=state,
        )
        done = 0
        async with RealtimeClient(connection) as client:
            while not stop.is_set():
                waiting = client.wait_for("response.done")
                try:
                    await client.send({"type": "response.create"})
                    async with asyncio.timeout(15):
                        event = await waiting
                except (TimeoutError, RealtimeError) as exc:
                    say({"sid": sid, "lost": type(exc).__name__})
                    waiting.cancel()
                    continue
                done += 1
                say({"sid": sid, "done": event["response"]["id"]})
        return {"ok": True, "done": done}

    async def op_stop(self, c: dict[str, Any]) -> dict[str, Any]:
        self.stops[c["sid"]].set()
        return {"ok": True}

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def refusal(exc: Exception) -> dict[str, Any]:
    """Status and ``error.code`` of a refused upgrade (websockets' ``InvalidStatus``)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    code = None
    with contextlib.suppress(Exception):
        code = orjson.loads(response.body)["error"]["code"]  # type: ignore[union-attr]
    return {"status": status, "code": code, "error": type(exc).__name__}


async def main() -> None:
    driver = Driver()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    say({"ready": True})
    while line := await reader.readline():
        driver.spawn(driver.run(orjson.loads(line)))
    for stack in list(driver.contexts.values()):
        with contextlib.suppress(Exception):
            await stack.aclose()
    for task in list(driver.tasks):
        task.cancel()
    await asyncio.gather(*driver.tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
