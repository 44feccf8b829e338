"""The caller's side of a WebRTC call, built as OpenAI's WebRTC guide builds it in a browser.

One audio track (the microphone) and the ``oai-events`` data channel on a peer with no
STUN or TURN server (``iceServers=[]``); the offer is gathered before it is posted, as
aiortc does not trickle. The POST carries it in one of OpenAI's two body shapes
(``offer_request``). Shared by ``rtrelay probe --webrtc``, ``rtrelay.client``'s call
helper (the body shapes only), ``rtrelay bench --webrtc`` and the tests: ``RtcClient``
is a whole caller (a browser in Python) made of these parts.

aiortc (and PyAV) take a quarter of a second to import, so they are imported on the
first peer, not with this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import aiohttp
import orjson

from rtrelay.ice import loopback_candidates
from rtrelay.wire import EVENTS_CHANNEL

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection

__all__ = [
    "CallRefused",
    "OfferRequest",
    "RtcClient",
    "local_offer",
    "new_peer",
    "offer_request",
]

SDP_TYPE: Final = "application/sdp"
LOUD: Final = 500
"""A received sample above this (pcm16) makes its frame "loud": reply audio, not silence."""


@dataclass(frozen=True, slots=True)
class OfferRequest:
    """What ``POST /v1/realtime/calls`` sends: body, headers, query. Build one per request."""

    data: str | aiohttp.FormData
    headers: dict[str, str]
    params: dict[str, str]


def offer_request(
    sdp: str,
    *,
    api_key: str | None = None,
    model: str | None = None,
    session: Mapping[str, Any] | None = None,
) -> OfferRequest:
    """The offer POST in OpenAI's raw shape, or multipart when ``session`` is given.

    Raw: the SDP as ``application/sdp`` with ``?model=``. Multipart (what
    ``client.realtime.calls.create`` sends): parts ``sdp`` and ``session``, the GA
    session config; ``model`` goes inside ``session`` unless it already names one.
    """
    headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
    if session is None:
        headers["Content-Type"] = SDP_TYPE
        return OfferRequest(sdp, headers, {} if model is None else {"model": model})
    config = dict(session)
    if model is not None:
        config.setdefault("model", model)
    form = aiohttp.FormData()
    form.add_field("sdp", sdp, content_type=SDP_TYPE)
    form.add_field("session", orjson.dumps(config).decode(), content_type="application/json")
    return OfferRequest(form, headers, {})


def new_peer(
    microphone: MediaStreamTrack | None = None,
) -> tuple[RTCPeerConnection, RTCDataChannel]:
    """A caller's peer: the microphone (or a send-receive audio slot without one) and the
    events channel, with no ICE servers: nothing is contacted beyond the callee."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if microphone is None:
        pc.addTransceiver("audio", direction="sendrecv")
    else:
        pc.addTrack(microphone)
    return pc, pc.createDataChannel(EVENTS_CHANNEL)


async def local_offer(pc: RTCPeerConnection, *, loopback: bool) -> str:
    """Create and set the offer; its SDP once gathering is done.

    ``loopback``: the callee is on this machine, so offer the 127.0.0.1 candidate alone
    (aioice leaves it out otherwise, and two local peers would never pair).
    """
    if not loopback:
        await pc.setLocalDescription(await pc.createOffer())
    else:
        with loopback_candidates():
            await pc.setLocalDescription(await pc.createOffer())
    return str(pc.localDescription.sdp)


class CallRefused(RuntimeError):
    """The offer was not answered with 201 (``RtcClient.start``): ``status``, ``body``."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {' '.join(body.split())[:300]}")
        self.status = status
        self.body = body


class RtcClient:
    """One call on loopback, seen from the caller's side; ``async with`` closes it.

    Args:
        microphone: offer a microphone track (silence, or what ``speak`` queues);
            without one the audio slot is still offered, and no audio is encoded.

    Attributes:
        status / headers / body: the answer to the offer POST.
        posted_ns / answered_ns: ``time.perf_counter_ns()`` as the offer POST began and
            once its answer was read (before it was applied).
        events / event_ns: every event received on the data channel, in order, and when.
        frames / loud_frames: audio frames received on the remote track, and how many of
            them were not silence.
    """

    def __init__(self, *, microphone: bool = True) -> None:
        from rtrelay.mock._rtc import ReplyTrack

        # The mock's reply track is a paced pcm16 source: just what a microphone is.
        self.microphone = ReplyTrack(lambda kind, response_id: None) if microphone else None
        self.pc, self.channel = new_peer(self.microphone)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self.body = ""
        self.posted_ns = 0
        self.answered_ns = 0
        self.events: list[dict[str, Any]] = []
        self.event_ns: list[int] = []
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
        return await local_offer(self.pc, loopback=True)

    async def call(
        self,
        http: aiohttp.ClientSession,
        url: str,
        *,
        api_key: str | None = "sk-test",
        model: str | None = None,
        session: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """POST the offer (raw SDP, or multipart when ``session`` is given); apply a 201.

        ``headers`` are added to the request's (an ``Authorization`` there wins).

        Returns:
            the HTTP status (the answer is applied only on 201).
        """
        request = offer_request(await self.offer(), api_key=api_key, model=model, session=session)
        self.posted_ns = time.perf_counter_ns()
        async with http.post(
            url,
            data=request.data,
            headers={**request.headers, **(headers or {})},
            params=request.params,
        ) as response:
            self.status = response.status
            self.headers = response.headers.copy()  # case-insensitive, as HTTP is
            self.body = await response.text()
        self.answered_ns = time.perf_counter_ns()
        if self.status == 201:
            await self.answer(self.body)
        return self.status

    async def start(self, http: aiohttp.ClientSession, url: str, **options: Any) -> None:
        """Make the call (see ``call``) and wait for ``session.created`` on the channel.

        Raises:
            CallRefused: the offer was not answered with 201.
            TimeoutError: no ``session.created`` within 10 s.
        """
        status = await self.call(http, url, **options)
        if status != 201:
            raise CallRefused(status, self.body)
        await self.next_event("session.created")

    async def answer(self, sdp: str) -> None:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    @property
    def call_id(self) -> str:
        """The call id of the answer's ``Location`` (``/v1/realtime/calls/<id>``)."""
        return self.headers["Location"].rsplit("/", 1)[-1]

    def speak(self, pcm16: bytes) -> None:
        """Say ``pcm16`` (24 kHz) into the microphone, after anything still queued."""
        if self.microphone is None:
            raise RuntimeError("this caller has no microphone")
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
        return self.events[await self.next_index(kind, after=after, timeout=timeout)]

    async def next_index(self, kind: str, *, after: int = 0, timeout: float = 10.0) -> int:
        """The index (in ``events`` and ``event_ns``) of the first ``kind`` at ``after``
        or later, waiting for it."""
        found: list[int] = []

        def seen() -> bool:
            found[:] = [
                i for i in range(after, len(self.events)) if self.events[i]["type"] == kind
            ][:1]
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
        if self.microphone is not None:
            self.microphone.stop()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def _on_message(self, message: str | bytes) -> None:
        self.event_ns.append(time.perf_counter_ns())
        self.events.append(orjson.loads(message))
        self._changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.create_task(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        import av
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            samples = array("h", bytes(frame.planes[0]))
            self.frames += 1
            if samples and max(abs(min(samples)), max(samples)) > LOUD:
                self.loud_frames += 1
            self._changed.set()
