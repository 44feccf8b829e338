"""A browser in Python: an aiortc peer that calls a WebRTC endpoint as OpenAI's guide does.

It offers one audio track (the "microphone": silence, or audio a test queues) and the
``oai-events`` data channel, POSTs the offer, applies the answer, and exposes the events
received on the channel and the audio frames received on the remote track. Every peer
stays on loopback (``loopback_candidates``) and must be closed: ``async with``.
"""

from __future__ import annotations

import asyncio
import contextlib
from array import array
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from rtrelay.mock import loopback_candidates
from rtrelay.mock._rtc import ReplyTrack
from rtrelay.wire import EVENTS_CHANNEL

__all__ = ["RtcClient"]


class RtcClient:
    """One call, seen from the caller's side.

    Attributes:
        status / headers / body: the answer to the offer POST.
        events: every event received on the data channel, in order.
        frames / loud_frames: audio frames received on the remote track, and how many of
            them were not silence.
    """

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        # The mock's reply track is a paced pcm16 source: just what a microphone is.
        self.microphone = ReplyTrack(lambda kind, response_id: None)
        self.pc.addTrack(self.microphone)
        self.channel: RTCDataChannel = self.pc.createDataChannel(EVENTS_CHANNEL)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self.body = ""
        self.events: list[dict[str, Any]] = []
        self.frames = 0
        self.loud_frames = 0
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._opened = asyncio.Event()
        self.channel.on("open", self._opened.set)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def offer(self) -> str:
        """Our SDP offer (gathered on loopback only)."""
        with loopback_candidates():
            await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def call(
        self,
        http: aiohttp.ClientSession,
        url: str,
        *,
        api_key: str | None = "sk-test",
        model: str | None = None,
        session: dict[str, Any] | None = None,
    ) -> int:
        """POST the offer (raw SDP, or multipart when ``session`` is given); apply a 201.

        Returns:
            the HTTP status (the answer is applied only on 201).
        """
        sdp = await self.offer()
        headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
        params = {} if model is None else {"model": model}
        data: Any
        if session is None:
            data = sdp
            headers["Content-Type"] = "application/sdp"
        else:
            data = aiohttp.FormData()
            data.add_field("sdp", sdp, content_type="application/sdp")
            data.add_field(
                "session", orjson.dumps(session).decode(), content_type="application/json"
            )
        async with http.post(url, data=data, headers=headers, params=params) as response:
            self.status = response.status
            self.headers = response.headers.copy()  # case-insensitive, as HTTP is
            self.body = await response.text()
        if self.status == 201:
            await self.answer(self.body)
        return self.status

    async def start(self, http: aiohttp.ClientSession, url: str, **options: Any) -> None:
        """Make the call (see ``call``) and wait for ``session.created`` on the channel."""
        status = await self.call(http, url, **options)
        assert status == 201, (status, self.body)
        await self.next_event("session.created")

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    @property
    def call_id(self) -> str:
        return self.headers["Location"].rsplit("/", 1)[-1]

    def speak(self, pcm16: bytes) -> None:
        """Say ``pcm16`` (24 kHz) into the microphone, after anything still queued."""
        self.microphone.play("speech", pcm16)

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(orjson.dumps(event).decode())

    async def wait_open(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await self._opened.wait()

    async def next_event(
        self, kind: str, *, after: int = 0, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first event of type ``kind`` at index ``after`` or later, waiting for it."""
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [e for e in self.events[after:] if e["type"] == kind][:1]
            return bool(found)

        await self.wait_for(seen, timeout)
        return found[0]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, re-checked as events and frames arrive."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    async def close(self) -> None:
        await self.pc.close()
        self.microphone.stop()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def _on_message(self, message: str | bytes) -> None:
        self.events.append(orjson.loads(message))
        self._changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.create_task(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            samples = array("h", bytes(frame.planes[0]))
            self.frames += 1
            if samples and max(abs(min(samples)), max(samples)) > 500:
                self.loud_frames += 1
            self._changed.set()
