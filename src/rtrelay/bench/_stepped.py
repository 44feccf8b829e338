"""A session driven one step at a time, so that every run sends the target the same work.

Instruction counts repeat from run to run only if the target does the same thing each
time, and a relay's work per frame depends on how frames arrive: two frames read by one
``read()`` cost one system call and one event-loop turn, two frames apart cost two. So
at most one client frame is in flight in the whole run, and each goes out ``gap``
seconds after the previous step ended, long after a target under valgrind is idle again:

- ``talk``: an audio append, then a latency probe, which the simulated provider answers
  at once; the answer, coming back in order behind the append, ends the step (3 frames);
- ``respond``: a commit (synchronised by a probe, as above), then ``response.create``;
  the provider streams its reply paced in real time (one audio step per ``chunk_ms``),
  ending with ``response.done``, after which a last probe makes sure nothing trails.

The provider's own bursts (``response.created`` … ``content_part.added``, the closing
``.done`` events) still arrive back to back; a target under valgrind reads each burst
whole the same way every run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

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
)
from rtrelay.bench._session import Tally
from rtrelay.bench._target import Target

__all__ = ["STEP_TIMEOUT", "SessionFailed", "SteppedSession"]

STEP_TIMEOUT: Final = 120.0
"""Seconds one step may take: a target under callgrind runs ~50x slower than native."""
_HEAD: Final = 64
_CREATED: Final = b"session.created"
_DONE: Final = b'"response.done"'
_ERROR: Final = b'"error"'
_PROBE_ANSWER: Final = b'"event_id":"' + PROBE_PREFIX.encode()


class SessionFailed(RuntimeError):
    """A session was refused, closed or answered with something the workload never asks for."""


class SteppedSession:
    """One client session whose every step ends when the target has forwarded all of it.

    Args:
        http: the client session that opens the WebSocket.
        target: where to connect.
        audio: the chunk every append carries.
        tally: where frames and bytes are counted (shared by a run's sessions).
        gap: seconds of quiet before each frame sent.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        target: Target,
        audio: Audio,
        tally: Tally,
        *,
        gap: float,
    ) -> None:
        self._http = http
        self._target = target
        self._audio = audio
        self._tally = tally
        self._gap = gap
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None

    async def open(self) -> None:
        """Handshake, ``session.created``, then ``session.update`` (server VAD off)."""
        self._ws = await asyncio.wait_for(
            self._http.ws_connect(
                self._target.url,
                headers=self._target.headers,
                max_msg_size=0,
                decode_text=False,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_close=STEP_TIMEOUT),
            ),
            STEP_TIMEOUT,
        )
        first = await self._receive()
        if _CREATED not in first[:_HEAD]:
            raise SessionFailed(f"{self._target.name}: first event {first[:_HEAD]!r}")
        await self._send(session_update_frame(time.monotonic_ns()))
        await self._sync()

    async def talk(self) -> None:
        """One audio append, then a probe round trip."""
        await self._send(append_frame(self._audio, time.monotonic_ns()))
        await self._sync()

    async def respond(self) -> None:
        """Commit the audio, ask for a response, read it to ``response.done``."""
        await self._send(commit_frame(time.monotonic_ns()))
        await self._sync()
        await self._send(response_create_frame(time.monotonic_ns()))
        while True:
            data = await self._receive()
            if _DONE in data[:_HEAD]:
                status = orjson.loads(data).get("response", {}).get("status")
                if status != "completed":
                    raise SessionFailed(f"{self._target.name}: response {status}")
                self._tally.responses += 1
                break
        await self._sync()

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            async with asyncio.timeout(STEP_TIMEOUT):
                await ws.close(code=1000)

    async def _sync(self) -> None:
        """A probe, then read until its answer: whatever was sent before it is through."""
        await self._send(probe_frame(time.monotonic_ns()))
        while _PROBE_ANSWER not in await self._receive():
            pass

    async def _send(self, frame: bytes) -> None:
        assert self._ws is not None
        await asyncio.sleep(self._gap)
        await self._ws.send_frame(frame, WSMsgType.TEXT)
        self._tally.frames_sent += 1
        self._tally.bytes_sent += len(frame)

    async def _receive(self) -> bytes:
        assert self._ws is not None
        msg = await self._ws.receive(timeout=STEP_TIMEOUT)
        if msg.type is not WSMsgType.TEXT:
            raise SessionFailed(f"{self._target.name}: {msg.type.name} {msg.data!r}"[:300])
        data: bytes = msg.data
        self._tally.frames_received += 1
        self._tally.bytes_received += len(data)
        is_error = _ERROR in data[:_HEAD] and _PROBE_ANSWER not in data
        if is_error and orjson.loads(data).get("type") == "error":
            raise SessionFailed(f"{self._target.name}: {data[:300]!r}")
        return data
