"""One benchmark session: a realtime conversation at real-time pace, measured as it goes.

An audio session streams microphone audio without pause (``input_audio_buffer.append``
every ``chunk_ms``), commits every ``turn_ms`` and asks for a response, which the
simulated provider streams back in real time (audio and transcript deltas) while the
user goes on talking. A text session sends a typed message and a text-only response
request every turn. An idle session connects and then stays silent. Audio and text
sessions send a latency probe every ``probe_ms``, half a period after the audio.
``_live_session`` speaks GPT-Live the same way through the hooks ``_opening_frame``,
``_opened``, ``_speak``, ``_probe_id`` and ``_other_event``.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

import aiohttp
import orjson
from aiohttp import WSMsgType

from rtrelay.bench._frames import (
    PROBE_PREFIX,
    Audio,
    append_frame,
    commit_frame,
    probe_frame,
    response_create_frame,
    session_update_frame,
    text_item_frame,
)
from rtrelay.bench._target import Target

__all__ = ["HANDSHAKE_TIMEOUT", "BenchSession", "LoadPlan", "Recorder", "SessionKind", "Tally"]

SessionKind = Literal["audio", "text", "idle"]

HANDSHAKE_TIMEOUT: Final = 20.0
CLOSE_TIMEOUT: Final = 5.0
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_AUDIO_DELTA: Final = b'output_audio.delta"'
_USER_TEXT: Final = "What is the weather like on the coast this weekend?"


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """The conversation every session follows."""

    audio: Audio
    turn_ms: int
    probe_ms: int

    @property
    def chunk_ms(self) -> int:
        return self.audio.ms

    @property
    def chunks_per_turn(self) -> int:
        return max(1, self.turn_ms // self.audio.ms)


@dataclass(slots=True)
class Tally:
    """Frames and bytes through the target, both ways, as the clients saw them."""

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    audio_deltas: int = 0
    responses: int = 0

    def copy(self) -> Tally:
        return Tally(
            self.frames_sent,
            self.bytes_sent,
            self.frames_received,
            self.bytes_received,
            self.audio_deltas,
            self.responses,
        )

    def minus(self, other: Tally) -> Tally:
        return Tally(
            self.frames_sent - other.frames_sent,
            self.bytes_sent - other.bytes_sent,
            self.frames_received - other.frames_received,
            self.bytes_received - other.bytes_received,
            self.audio_deltas - other.audio_deltas,
            self.responses - other.responses,
        )

    @property
    def frames(self) -> int:
        return self.frames_sent + self.frames_received

    @property
    def bytes(self) -> int:
        return self.bytes_sent + self.bytes_received


@dataclass(slots=True)
class Recorder:
    """What the sessions of one round measured; ``measuring`` marks the window that counts."""

    tally: Tally = field(default_factory=Tally)
    measuring: bool = False
    rtts_ns: array[int] = field(default_factory=lambda: array("q"))
    handshakes_ns: array[int] = field(default_factory=lambda: array("q"))
    connected: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    sessions_with_errors: int = 0

    @property
    def settled(self) -> int:
        """Sessions whose handshake has finished, either way."""
        return self.connected + sum(self.connect_failures.values())

    @property
    def failed_sessions(self) -> int:
        return (
            sum(self.connect_failures.values())
            + sum(self.dropped.values())
            + self.sessions_with_errors
        )


class BenchSession:
    """One client session against ``target``; ``run()`` returns when ``stop`` is set.

    Args:
        http: the client session that opens the WebSocket.
        target: where to connect.
        kind: ``audio``, ``text`` or ``idle``.
        plan: the conversation pattern.
        recorder: where measurements go.
        stop: set when the round is over.
    """

    FIRST_EVENT: ClassVar[bytes] = b"session.created"
    """What the provider's first event is called: the session is open when it arrives."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        target: Target,
        kind: SessionKind,
        plan: LoadPlan,
        recorder: Recorder,
        stop: asyncio.Event,
    ) -> None:
        self._http = http
        self._target = target
        self._kind = kind
        self._plan = plan
        self._rec = recorder
        self._stop = stop
        self._responding = False
        self._had_error = False

    async def run(self) -> None:
        ws = await self._connect()
        if ws is None:
            return
        reader = asyncio.create_task(self._read(ws), name="rtrelay.bench.read")
        try:
            if self._kind == "audio":
                await self._talk(ws, reader)
            elif self._kind == "text":
                await self._chat(ws, reader)
            else:
                await self._idle(reader)
        finally:
            await self._close(ws, reader)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse[bool] | None:
        rec = self._rec
        started = time.monotonic_ns()
        ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                ws = await self._http.ws_connect(
                    self._target.url,
                    headers=self._target.headers,
                    max_msg_size=0,
                    decode_text=False,
                    timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
                )
                opening = self._opening_frame()
                if opening is not None:
                    await ws.send_frame(opening, _TEXT)
                    rec.tally.frames_sent += 1
                    rec.tally.bytes_sent += len(opening)
                first = await ws.receive()
        except aiohttp.WSServerHandshakeError as exc:
            rec.connect_failures[f"http_{exc.status}"] += 1
            return None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            rec.connect_failures[type(exc).__name__] += 1
            if ws is not None:
                await ws.close()
            return None
        if first.type is not _TEXT or self.FIRST_EVENT not in first.data[:64]:
            rec.connect_failures[_describe(first.type, first.data)] += 1
            await ws.close()
            return None
        rec.handshakes_ns.append(time.monotonic_ns() - started)
        rec.connected += 1
        rec.tally.frames_received += 1
        rec.tally.bytes_received += len(first.data)
        await self._opened(ws)
        return ws

    def _opening_frame(self) -> bytes | None:
        """What the client sends before the provider's first event (Realtime: nothing)."""
        return None

    async def _opened(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        await self._send(ws, session_update_frame(time.monotonic_ns()))

    async def _send(self, ws: aiohttp.ClientWebSocketResponse[bool], frame: bytes) -> bool:
        try:
            await ws.send_frame(frame, _TEXT)
        except (ConnectionError, aiohttp.ClientError):
            return False  # the reader sees the close and counts the drop
        tally = self._rec.tally
        tally.frames_sent += 1
        tally.bytes_sent += len(frame)
        return True

    async def _talk(
        self, ws: aiohttp.ClientWebSocketResponse[bool], reader: asyncio.Task[None]
    ) -> None:
        loop = asyncio.get_running_loop()
        plan = self._plan
        chunk_s = plan.chunk_ms / 1000
        probe_s = plan.probe_ms / 1000
        start = loop.time()
        next_audio = start + chunk_s
        next_probe = start + probe_s / 2
        chunks = 0
        while not self._stop.is_set() and not reader.done():
            now = loop.time()
            due = min(next_audio, next_probe)
            if due > now:
                await asyncio.sleep(due - now)
                continue
            if next_audio <= now:
                # Audio keeps real-time pace on average: a late tick is caught up, as a
                # microphone's buffer would be.
                next_audio += chunk_s
                chunks += 1
                if not await self._speak(ws, chunks):
                    return
            if next_probe <= now:
                # Probes are not caught up: a burst would only measure our own backlog.
                next_probe = max(next_probe + probe_s, now + probe_s / 2)
                if not await self._send(ws, probe_frame(time.monotonic_ns())):
                    return

    async def _speak(self, ws: aiohttp.ClientWebSocketResponse[bool], chunk: int) -> bool:
        """Send the ``chunk``-th append (from 1); the turn's last one ends the turn."""
        if not await self._send(ws, append_frame(self._plan.audio, time.monotonic_ns())):
            return False
        return chunk % self._plan.chunks_per_turn != 0 or await self._end_turn(ws)

    async def _end_turn(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> bool:
        if not await self._send(ws, commit_frame(time.monotonic_ns())):
            return False
        if self._responding:
            return True  # the previous reply is still playing: no barge-in, no error
        self._responding = True
        return await self._send(ws, response_create_frame(time.monotonic_ns()))

    async def _chat(
        self, ws: aiohttp.ClientWebSocketResponse[bool], reader: asyncio.Task[None]
    ) -> None:
        loop = asyncio.get_running_loop()
        plan = self._plan
        probe_s = plan.probe_ms / 1000
        turn_s = plan.turn_ms / 1000
        start = loop.time()
        next_turn = start + turn_s
        next_probe = start + probe_s / 2
        while not self._stop.is_set() and not reader.done():
            now = loop.time()
            due = min(next_turn, next_probe)
            if due > now:
                await asyncio.sleep(due - now)
                continue
            if next_turn <= now:
                next_turn = max(next_turn + turn_s, now)
                if not self._responding:
                    self._responding = True
                    item = text_item_frame(time.monotonic_ns(), _USER_TEXT)
                    create = response_create_frame(time.monotonic_ns(), text_only=True)
                    if not (await self._send(ws, item) and await self._send(ws, create)):
                        return
            if next_probe <= now:
                next_probe = max(next_probe + probe_s, now + probe_s / 2)
                if not await self._send(ws, probe_frame(time.monotonic_ns())):
                    return

    async def _idle(self, reader: asyncio.Task[None]) -> None:
        stop = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({stop, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        rec = self._rec
        tally = rec.tally
        while True:
            msg = await ws.receive()
            received = time.monotonic_ns()
            kind = msg.type
            if kind is _TEXT or kind is _BINARY:
                data: bytes = msg.data
                tally.frames_received += 1
                tally.bytes_received += len(data)
                if _AUDIO_DELTA in data[:64]:
                    tally.audio_deltas += 1
                else:
                    self._event(data, received)
                continue
            if not self._stop.is_set():
                rec.dropped[_describe(kind, msg.data)] += 1
            return

    def _event(self, data: bytes, received: int) -> None:
        try:
            event: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error("malformed_frame")
            return
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "error":
            error = event.get("error") or {}
            event_id = self._probe_id(event)
            if isinstance(event_id, str) and event_id.startswith(PROBE_PREFIX):
                if self._rec.measuring:
                    self._rec.rtts_ns.append(received - int(event_id[len(PROBE_PREFIX) :]))
            else:
                self._error(str(error.get("code") or error.get("type") or "error"))
        else:
            self._other_event(kind, event)

    def _probe_id(self, event: dict[str, Any]) -> Any:
        """The client event id an ``error`` event answers (Realtime: ``error.event_id``)."""
        return (event.get("error") or {}).get("event_id")

    def _other_event(self, kind: Any, event: dict[str, Any]) -> None:
        """Any event but an ``error`` or an audio delta."""
        if kind == "response.done":
            self._responding = False
            self._rec.tally.responses += 1
            status = (event.get("response") or {}).get("status")
            if status != "completed":
                self._error(f"response_{status}")

    def _error(self, code: str) -> None:
        self._rec.errors[code] += 1
        if not self._had_error:
            self._had_error = True
            self._rec.sessions_with_errors += 1

    async def _close(
        self, ws: aiohttp.ClientWebSocketResponse[bool], reader: asyncio.Task[None]
    ) -> None:
        try:
            if not ws.closed:
                async with asyncio.timeout(CLOSE_TIMEOUT * 2):
                    await ws.close(code=1000)
        except (TimeoutError, ConnectionError, aiohttp.ClientError):
            pass  # the peer went away while we closed: nothing left to tell it
        finally:
            reader.cancel()
            await asyncio.wait({reader})  # ours to cancel; a cancel of *us* still propagates
            exc = None if reader.cancelled() else reader.exception()
            if exc is not None and not isinstance(exc, ConnectionError | aiohttp.ClientError):
                raise exc


def _describe(kind: WSMsgType, data: Any) -> str:
    """A short name for how a session ended or was refused, for the failure counts."""
    if kind is WSMsgType.CLOSE:
        return f"close_{data}"
    if kind is _TEXT:
        try:
            event = orjson.loads(data)
            return f"first_event_{event['error']['code']}"
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return "unexpected_first_event"
    return kind.name.lower()
