"""One short soak session: connect, do one small thing, end one of several ways.

The soak (``rtrelay bench --soak``) looks for what a long-running relay leaks, so its
sessions are short but real and end every way a deployment sees: the client closes
after a response or after a couple of audio appends, the provider closes, the client
vanishes without a close frame, or the handshake is refused (a wrong key). Each
session counts what it saw (``session.created``, ``response.done``, close codes) into a
``SoakTally``: the ledger check afterwards compares the relay's rows with these counts.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import aiohttp
import orjson
from aiohttp import WSMsgType

from rtrelay.bench._frames import PROBE_PREFIX, SAMPLE_RATE

__all__ = [
    "PROVIDER_CLOSE_AFTER_EVENTS",
    "PROVIDER_CLOSE_CODE",
    "SESSION_TIMEOUT",
    "SoakClient",
    "SoakKind",
    "SoakTally",
    "soak_kind",
]

SoakKind = Literal["respond", "audio", "provider_close", "vanish", "refused"]

_MIX: Final[tuple[SoakKind, ...]] = (
    "respond",
    "audio",
    "respond",
    "provider_close",
    "respond",
    "audio",
    "respond",
    "provider_close",
    "vanish",
    "respond",
)
"""Ten sessions in a row: half respond, a fifth each audio and provider-closed, one vanishes.
Every ``bad_key_every``-th session replaces the last slot (a ``respond``) with a refusal."""

PROVIDER_CLOSE_AFTER_EVENTS: Final = 18
"""The provider closes every connection after this many events (``rtrelay mock
--close-after-events``). A ``respond`` session receives 15 (``session.created`` and one
response of 200 ms audio), so only ``provider_close`` sessions, which then send probes
until the close comes, ever reach it."""
PROVIDER_CLOSE_CODE: Final = 1001
_MAX_PROBES: Final = 10
SESSION_TIMEOUT: Final = 30.0
"""Bound on one session, so a stuck relay ends the soak instead of hanging it."""
CLOSE_TIMEOUT: Final = 5.0
_APPENDS: Final = 2
_CHUNK_MS: Final = 100
_SILENCE: Final = base64.b64encode(bytes(SAMPLE_RATE * _CHUNK_MS // 1000 * 2))
"""100 ms of digital silence: server VAD hears nothing, so appends start no response."""
_RESPONSE_CREATE: Final = b'{"type":"response.create"}'


def soak_kind(index: int, bad_key_every: int) -> SoakKind:
    """What session number ``index`` (from 0) does; refused every ``bad_key_every`` (0: never)."""
    if bad_key_every > 0 and index % bad_key_every == bad_key_every - 1:
        return "refused"
    return _MIX[index % len(_MIX)]


@dataclass(slots=True)
class SoakTally:
    """What the clients saw, all sessions together."""

    started: int = 0
    connected: int = 0
    """Sessions that received ``session.created``: the relay owes each a session row."""
    refused: int = 0
    """Refused handshakes (the wrong key): 401, as planned."""
    responses: int = 0
    """``response.done`` events received: the relay owes each a usage row."""
    kinds: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    close_codes: Counter[str] = field(default_factory=Counter)
    """Close codes the clients received (``none``: the client vanished first)."""
    failures: Counter[str] = field(default_factory=Counter)
    """Anything not in the plan, by what happened."""

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "connected": self.connected,
            "refused": self.refused,
            "responses": self.responses,
            "failed": self.failed,
            "kinds": dict(sorted(self.kinds.items())),
            "endings": dict(sorted(self.endings.items())),
            "client_close_codes": dict(sorted(self.close_codes.items())),
            "failures": dict(sorted(self.failures.items())),
        }


class _Unexpected(Exception):
    """The session saw something outside its plan; the message names it."""


class SoakClient:
    """Runs soak sessions against one relay URL.

    Args:
        http: the shared client session (a vanishing session opens its own).
        url: the relay's ``…/v1/realtime?model=…``.
        headers: the good credential; ``bad_headers`` the refused one.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        headers: Mapping[str, str],
        bad_headers: Mapping[str, str],
        tally: SoakTally,
    ) -> None:
        self._http = http
        self._url = url
        self._headers = dict(headers)
        self._bad_headers = dict(bad_headers)
        self.tally = tally
        self._probe_ids = itertools.count()

    async def run(self, kind: SoakKind) -> None:
        """One session of ``kind``; whatever goes wrong is counted, never raised."""
        tally = self.tally
        tally.started += 1
        tally.kinds[kind] += 1
        try:
            async with asyncio.timeout(SESSION_TIMEOUT):
                if kind == "refused":
                    await self._refused()
                elif kind == "vanish":
                    await self._vanish()
                else:
                    await self._closing(kind)
        except _Unexpected as exc:
            tally.failures[str(exc)] += 1
        except TimeoutError:
            tally.failures[f"{kind}_timeout"] += 1
        except (aiohttp.ClientError, OSError, orjson.JSONDecodeError) as exc:
            tally.failures[f"{kind}_{type(exc).__name__}"] += 1

    async def _refused(self) -> None:
        # Its own connection, closed after the 401: a refused client that kept its
        # connection alive in our pool would read as a socket the relay holds.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as once:
            try:
                ws = await once.ws_connect(self._url, headers=self._bad_headers)
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status != 401:
                    raise _Unexpected(f"refused_http_{exc.status}") from None
                self.tally.refused += 1
                self.tally.endings["refused_401"] += 1
                return
            await ws.close()
        raise _Unexpected("wrong_key_admitted")

    async def _vanish(self) -> None:
        # Its own connector: closing it drops the TCP connection with no close frame,
        # as a phone that lost its network would.
        own = aiohttp.ClientSession()
        try:
            ws = await self._connect(own)
            await self._appends(ws)
        finally:
            await own.close()
        self.tally.endings["client_vanished"] += 1
        self.tally.close_codes["none"] += 1

    async def _closing(self, kind: SoakKind) -> None:
        ws = await self._connect(self._http)
        try:
            if kind == "audio":
                await self._appends(ws)
            else:
                await self._respond(ws)
            if kind == "provider_close":
                code = await self._probe_until_closed(ws)
                self.tally.endings["provider_closed"] += 1
            else:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await ws.close(code=1000)
                code = ws.close_code
                self.tally.endings["client_closed"] += 1
            self.tally.close_codes[str(code)] += 1
        finally:
            if not ws.closed:
                await ws.close()

    async def _connect(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse[bool]:
        ws = await http.ws_connect(
            self._url,
            headers=self._headers,
            timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
        )
        event = await self._next_event(ws, "connect")
        if event.get("type") != "session.created":
            await ws.close()
            raise _Unexpected(f"connect_first_event_{event.get('type')}")
        self.tally.connected += 1
        return ws

    async def _appends(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        """Two appends of silence, then a probe whose answer proves they went through."""
        for _ in range(_APPENDS):
            await ws.send_frame(
                b'{"type":"input_audio_buffer.append","audio":"%s"}' % _SILENCE, WSMsgType.TEXT
            )
        await self._probe(ws, "audio")

    async def _respond(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        await ws.send_frame(_RESPONSE_CREATE, WSMsgType.TEXT)
        while True:
            event = await self._next_event(ws, "respond")
            kind = event.get("type")
            if kind == "response.done":
                self.tally.responses += 1
                return
            if kind == "error":
                raise _Unexpected(f"respond_error_{_error_code(event)}")

    async def _probe(self, ws: aiohttp.ClientWebSocketResponse[bool], stage: str) -> None:
        """Send an event the provider does not know; it answers with an ``error`` naming it."""
        probe_id = f"{PROBE_PREFIX}{next(self._probe_ids)}"
        await ws.send_frame(
            orjson.dumps({"type": "bench.probe", "event_id": probe_id}), WSMsgType.TEXT
        )
        while True:
            event = await self._next_event(ws, stage)
            if event.get("type") == "error":
                error = event.get("error")
                if isinstance(error, dict) and error.get("event_id") == probe_id:
                    return
                raise _Unexpected(f"{stage}_error_{_error_code(event)}")

    async def _probe_until_closed(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> int | None:
        """Probe until the provider's close reaches us; returns the close code we received."""
        for _ in range(_MAX_PROBES):
            try:
                await self._probe(ws, "provider_close")
            except _Closed as closed:
                if closed.code != PROVIDER_CLOSE_CODE:
                    raise _Unexpected(f"provider_close_code_{closed.code}") from None
                return closed.code
        raise _Unexpected("provider_never_closed")

    async def _next_event(
        self, ws: aiohttp.ClientWebSocketResponse[bool], stage: str
    ) -> dict[str, Any]:
        msg = await ws.receive()
        if msg.type is WSMsgType.TEXT:
            event = orjson.loads(msg.data)
            if isinstance(event, dict):
                return event
            raise _Unexpected(f"{stage}_not_an_object")
        if msg.type is WSMsgType.CLOSE and stage == "provider_close":
            raise _Closed(msg.data)
        if msg.type is WSMsgType.CLOSE:
            raise _Unexpected(f"{stage}_closed_{msg.data}")
        raise _Unexpected(f"{stage}_{msg.type.name.lower()}")


class _Closed(Exception):
    """The relay closed the session (expected only where the provider was meant to)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


def _error_code(event: dict[str, Any]) -> str:
    error = event.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or "unknown")
    return "unknown"
