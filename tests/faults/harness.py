"""What every fault-matrix row shares: a real relay and provider, what was seen, the checks.

A row runs one fault against a fresh relay (in-process on 127.0.0.1, or ``rtrelay serve``
as a real process for the process faults) and the simulated provider, and returns what
a client saw. ``Stage`` then checks what every fault must leave behind: the relay still
serves a metered session, no session, lease, task or descriptor is left over.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import psutil

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, mock_channel_settings, running_relay, upgrade_headers

FAST = MockOptions(realtime_pacing=0, reply_audio_ms=300)
"""A provider that answers at once (most rows)."""
SLOW = MockOptions(realtime_pacing=1.0, reply_audio_ms=2000)
"""A provider whose responses last 2 s: long enough to fault one mid-stream."""


@dataclass(slots=True)
class Seen:
    """What the client observed (``None``: nothing of that kind)."""

    status: int | None = None
    """HTTP status of a refused handshake (101 when upgraded)."""
    code: str | None = None
    """``error.code`` of the last error event or of the refusal body."""
    close: int | None = None
    """Close code the client got (1006: the connection died without one)."""
    billed: int | None = None
    """Response rows in the ledger for the faulted session(s)."""
    note: str = ""

    def render(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code is not None:
            parts.append(f"`{self.code}`")
        if self.close is not None:
            parts.append(f"close {self.close}")
        if self.billed is not None:
            parts.append(f"{self.billed} billed")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts) or "—"

    def matches(self, expected: Seen) -> bool:
        return all(
            want is None or want == got
            for want, got in (
                (expected.status, self.status),
                (expected.code, self.code),
                (expected.close, self.close),
                (expected.billed, self.billed),
            )
        )


@dataclass(slots=True)
class Stage:
    """A relay in front of a simulated provider, with one key, for one fault."""

    provider: MockProvider
    relay: RunningRelay
    key: str
    tasks_before: int = 0
    sockets_before: int = 0
    store_url: str | None = None
    """Where to count billed rows, when the relay reaches its store through a test link."""
    pooled_ports: set[int] = field(default_factory=set)
    """Ports of services whose clients keep a pool (Redis): their sockets are not leaks."""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def billed(self) -> int:
        """Response rows in the ledger, read straight from the database."""
        sql = "SELECT count(*) FROM rtrelay_usage WHERE kind = 'response'"
        url = self.store_url or self.relay.relay.settings.store.url
        if url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(sqlite_path(url))) as db:
                (n,) = db.execute(sql).fetchone()
            return int(n)
        conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=10)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    async def seconds_billed(self) -> Decimal:
        """Seconds in the ledger's duration rows (GPT-Live, translation), read straight from
        the database (SQLite keeps exact decimals as integers of 1e-10)."""
        sql = "SELECT coalesce(sum(seconds), 0) FROM rtrelay_usage WHERE kind = 'duration'"
        url = self.store_url or self.relay.relay.settings.store.url
        if url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(sqlite_path(url))) as db:
                (n,) = db.execute(sql).fetchone()
            return Decimal(n).scaleb(-10)
        conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=10)
        try:
            return Decimal(await conn.fetchval(sql))
        finally:
            await conn.close()

    async def settled(self) -> None:
        """Wait (bounded) until the relay has no session and the ledger caught up."""
        relay = self.relay.relay
        async with asyncio.timeout(20):
            while relay.sessions:
                await asyncio.sleep(0.02)
        await relay.parts.writer.flush()


def sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


@contextlib.asynccontextmanager
async def stage(
    options: MockOptions = FAST,
    *,
    channel_url: str | None = None,
    serves: bool = True,
    store_url: str | None = None,
    **sections: Any,
) -> AsyncIterator[Stage]:
    """A fresh provider and relay; on exit, check the relay is whole and still serves.

    ``serves=False``: the channel itself is the fault (nothing to serve a session
    with), so only liveness is checked.
    """
    async with MockProvider(options) as provider:
        settings = mock_channel_settings(channel_url or provider.url, **sections)
        async with running_relay(settings) as relay:
            _, key = await relay.relay.parts.store.create_key(
                # One session at a time: a leaked lease makes still_serves fail with 429.
                KeySpec(name="fault", budget_usd=Decimal(100), max_sessions=1)
            )
            st = Stage(provider, relay, key, store_url=store_url)
            await warm_up(st)
            st.tasks_before = len(asyncio.all_tasks())
            st.sockets_before = len(psutil.Process().net_connections())
            yield st
            provider.options = FAST
            await st.settled()
            if serves:
                await still_serves(st)
            else:
                await alive(st)
            await st.settled()
            await no_leaks(st)


async def warm_up(st: Stage) -> None:
    """One session first, so pools and lazy imports are not counted as leaks."""
    provider_options = st.provider.options
    st.provider.options = FAST
    with contextlib.suppress(aiohttp.ClientError, AssertionError):
        await one_response(st)
    st.provider.options = provider_options
    await st.settled()


async def one_response(st: Stage) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(st.relay.realtime(), headers=st.auth) as ws,
    ):
        assert (await ws.receive_json())["type"] == "session.created"
        await ws.send_json({"type": "response.create"})
        await until_event(ws, "response.done")


async def still_serves(st: Stage) -> None:
    """The relay serves a metered session after the fault."""
    before = await st.billed()
    async with asyncio.timeout(10):
        while True:  # a channel's breaker may be cooling down after the fault
            try:
                await one_response(st)
                break
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status != 503:
                    raise
                await asyncio.sleep(0.1)
    await st.settled()
    assert (await st.billed()) == before + 1, "the relay no longer meters a healthy session"


async def alive(st: Stage) -> None:
    async with aiohttp.ClientSession() as http, http.get(st.relay.url + "/healthz") as resp:
        assert resp.status == 200


async def no_leaks(st: Stage) -> None:
    relay = st.relay.relay
    assert not relay.sessions
    for _ in range(200):  # up to 10 s for closes to finish
        if len(asyncio.all_tasks()) <= st.tasks_before:
            break
        await asyncio.sleep(0.05)
    tasks = sorted(t.get_name() for t in asyncio.all_tasks())
    assert len(tasks) <= st.tasks_before, f"tasks left: {tasks}"

    # Sockets, not files: the store's connection pool may grow (bounded) under a fault.
    def sockets() -> list[Any]:
        return [
            c
            for c in psutil.Process().net_connections()
            if not (c.raddr and c.raddr.port in st.pooled_ports)
        ]

    for _ in range(200):
        if len(sockets()) <= st.sockets_before:
            break
        await asyncio.sleep(0.05)
    left = sockets()
    assert len(left) <= st.sockets_before, [(c.laddr, c.raddr, c.status) for c in left]


async def until_event(ws: aiohttp.ClientWebSocketResponse[Any], kind: str) -> list[dict[str, Any]]:
    """Events up to and including the next one of ``kind`` (bounded)."""
    seen = []
    async with asyncio.timeout(30):
        while True:
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            try:
                event = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                event = {"type": "<not json>", "raw": msg.data}
            seen.append(event)
            if event.get("type") == kind:
                return seen


async def until_closed(ws: aiohttp.ClientWebSocketResponse[Any]) -> Seen:
    """Read to the end: the last error event's code and the close code."""
    seen = Seen(status=101)
    async with asyncio.timeout(30):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                with contextlib.suppress(orjson.JSONDecodeError):
                    event = orjson.loads(msg.data)
                    if isinstance(event, dict) and event.get("type") == "error":
                        seen.code = event["error"]["code"]
                continue
            seen.close = ws.close_code if ws.close_code is not None else 1006
            return seen


async def refused(st: Stage) -> Seen:
    """A server client's handshake that the relay refuses: status and body code."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(st.relay.realtime(), headers=upgrade_headers(**st.auth)) as resp,
    ):
        body = await resp.json() if resp.status != 101 else {}
        seen = Seen(status=resp.status, code=body.get("error", {}).get("code"))
        if "Retry-After" in resp.headers:
            seen.note = f"Retry-After {resp.headers['Retry-After']}"
        return seen


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rtrelay-fault-"))
