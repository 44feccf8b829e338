"""One simulated WebRTC call: an aiortc peer running the same protocol logic as a socket.

OpenAI's WebRTC shape (protocol.md §10, "Realtime API with WebRTC"): events ride the
``oai-events`` data channel (``session.created`` first), the reply audio rides the media
track (so no ``response.output_audio.delta`` events; ``output_audio_buffer.started|
stopped|cleared`` mark its playout), the caller's microphone track is the input audio
(server VAD hears it as if appended), and servers may attach sidebands that see every
event and act on the same session. This module is the I/O half: ``RealtimeProtocol``
still decides what is said. A GPT-Live WebRTC session is the same peer running
``LiveProtocol``: ``session.started`` first on the data channel, no playout events, usage
updates on a timer, and ``session.close`` ends the call after ``session.closed``.

Imported only when a call is made: aiortc and PyAV cost a quarter of a second to import,
which every ``rtrelay`` command would otherwise pay (``rtrelay.cli.mock`` imports the mock).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final

import av
import orjson
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from rtrelay.ice import keep_loopback_candidates, loopback_candidates
from rtrelay.mock._audio import PCM16_RATE, to_pcm16
from rtrelay.mock._options import MockOptions
from rtrelay.mock._pacing import stream_responses
from rtrelay.mock._records import CallRecord
from rtrelay.mock._response import Event, Step
from rtrelay.mock._session import MediaProtocol, Ticker, expiry_events, final_events
from rtrelay.mock._sideband import Sideband
from rtrelay.tasks import cancel_and_wait
from rtrelay.wire import EVENTS_CHANNEL

__all__ = ["ICE_TIMEOUT", "Call", "ReplyTrack"]

logger = logging.getLogger("rtrelay.mock")

# A call whose peer never completes ICE and DTLS within this is ended: nothing waits forever.
ICE_TIMEOUT: Final = 30.0
FRAME_MS: Final = 20  # WebRTC's usual audio packetisation
FRAME_SAMPLES: Final = PCM16_RATE * FRAME_MS // 1000
FRAME_BYTES: Final = 2 * FRAME_SAMPLES
# Reply audio waiting to be played is bounded (a client creating responses in a loop).
MAX_QUEUED_AUDIO_BYTES: Final = 2 * PCM16_RATE * 120
# Events produced before the data channel opened (a sideband's session.update, say).
MAX_PENDING_EVENTS: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
# How long the data channel may take to hand its last events (a Live session.closed) to
# SCTP before the peer connection closes.
FLUSH_TIMEOUT: Final = 2.0

# Who sent a client event: its errors go back to that sender only.
_DATA_CHANNEL: Final = object()


class _Segment:
    """One response's reply audio on the track, filled as steps arrive, drained as played."""

    __slots__ = ("audio", "done", "offset", "response_id", "started")

    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.audio = bytearray()
        self.offset = 0
        self.done = False
        self.started = False


class ReplyTrack(MediaStreamTrack):
    """The assistant's voice: 20 ms pcm16 frames at 24 kHz, silence between replies.

    aiortc pulls frames with ``recv()`` and encodes them (Opus, 48 kHz); this track paces
    them in real time, as a media source must. ``on_playout(event_type, response_id)``
    reports ``output_audio_buffer.started`` and ``.stopped`` as a response's audio begins
    and (once its ``response.done`` was seen) finishes playing.
    """

    kind = "audio"

    def __init__(self, on_playout: Callable[[str, str], None]) -> None:
        super().__init__()
        self._on_playout = on_playout
        self._segments: deque[_Segment] = deque()
        self._queued = 0
        self._cut: str | None = None  # a response whose audio was cleared: play no more of it
        self._start: float | None = None
        self._pts = 0

    def play(self, response_id: str, pcm16: bytes) -> None:
        """Queue reply audio of ``response_id`` (pcm16, 24 kHz) after what is queued."""
        if response_id == self._cut or self._queued + len(pcm16) > MAX_QUEUED_AUDIO_BYTES:
            return
        if not self._segments or self._segments[-1].response_id != response_id:
            self._segments.append(_Segment(response_id))
        self._segments[-1].audio += pcm16
        self._queued += len(pcm16)

    def end(self, response_id: str) -> None:
        """``response_id`` will get no more audio: report ``stopped`` once it has played."""
        for segment in self._segments:
            if segment.response_id == response_id:
                segment.done = True

    def clear(self) -> str | None:
        """Drop all queued audio; return the response whose audio was cut, if any."""
        if not self._segments:
            return None
        cut = self._segments[0].response_id
        self._cut = self._segments[-1].response_id
        self._segments.clear()
        self._queued = 0
        return cut

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += FRAME_SAMPLES
            await asyncio.sleep(max(0.0, self._start + self._pts / PCM16_RATE - loop.time()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(self._next_frame())
        frame.pts = self._pts
        frame.sample_rate = PCM16_RATE
        frame.time_base = fractions.Fraction(1, PCM16_RATE)
        return frame

    def _next_frame(self) -> bytes:
        out = bytearray()
        segments = self._segments
        while len(out) < FRAME_BYTES and segments:
            segment = segments[0]
            if not segment.started:
                segment.started = True
                self._on_playout("output_audio_buffer.started", segment.response_id)
            take = segment.audio[segment.offset : segment.offset + FRAME_BYTES - len(out)]
            segment.offset += len(take)
            self._queued -= len(take)
            out += take
            if segment.offset < len(segment.audio):
                continue
            if not segment.done:
                break  # more of this response's audio is still to come
            segments.popleft()
            self._on_playout("output_audio_buffer.stopped", segment.response_id)
        for segment in segments:  # release what was played (at most a frame ago)
            if segment.offset:
                del segment.audio[: segment.offset]
                segment.offset = 0
        out += bytes(FRAME_BYTES - len(out))
        return bytes(out)


class Call:
    """One call from the offer to its end.

    Args:
        call_id: the ``rtc_…`` id in ``Location``.
        protocol: the session (``transport="webrtc"``), with any multipart session config
            already applied (a Live session: already started).
        options: the options in force when the offer arrived.
        record: what tests can observe about this call.
        on_event: called with every client event parsed (from any source).
        on_end: called once when the call has ended.
        ticker: events to send on a timer (Live usage updates), if any.
    """

    def __init__(
        self,
        *,
        call_id: str,
        protocol: MediaProtocol,
        options: MockOptions,
        record: CallRecord,
        on_event: Callable[[dict[str, Any]], None],
        on_end: Callable[[Call], None],
        ticker: Ticker | None = None,
    ) -> None:
        self.id = call_id
        self._protocol = protocol
        self._options = options
        self._record = record
        self._on_event = on_event
        self._on_end = on_end
        self._ticker = ticker
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._track = ReplyTrack(self._playout)
        self._channel: RTCDataChannel | None = None
        self._pending: list[bytes] = []
        self._sidebands: list[Sideband] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ending: asyncio.Task[None] | None = None

    @property
    def protocol(self) -> MediaProtocol:
        return self._protocol

    @property
    def record(self) -> CallRecord:
        return self._record

    @property
    def ended(self) -> bool:
        return self._ending is not None

    async def answer(self, offer: str) -> str:
        """Apply the caller's SDP offer; return the answer (gathering only on loopback).

        Raises:
            ValueError: the offer is not usable SDP (the call is closed).
        """
        pc = self._pc
        pc.on("datachannel", self._on_datachannel)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_connection_state)
        try:
            with loopback_candidates():
                await pc.setRemoteDescription(
                    RTCSessionDescription(keep_loopback_candidates(offer), "offer")
                )
                if any(t.kind == "audio" for t in pc.getTransceivers()):
                    pc.addTrack(self._track)
                await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            # aiortc reports a bad offer with assorted exceptions (ValueError from its SDP
            # parser, InvalidAccessError, InternalError...): all are the offer's fault here.
            for task in self._tasks:  # a remote track may already have started a reader
                await cancel_and_wait(task)
            await pc.close()
            self._track.stop()
            raise ValueError(f"The SDP offer could not be applied: {exc}") from exc
        self._start(self._stream(), "stream")
        self._start(self._ice_deadline(), "ice")
        if self._options.max_session_seconds is not None:
            self._start(self._expire(self._options.max_session_seconds), "expire")
        if self._ticker is not None:
            self._start(self._tick(self._ticker), "tick")
        return pc.localDescription.sdp

    # --- events in and out -----------------------------------------------------------------

    def receive_text(self, data: str | bytes, source: object) -> list[Event]:
        """Handle one client event from ``source``: the data channel, a sideband, or any
        other object (a control request) whose errors then go nowhere but the return value.

        Returns:
            the protocol's replies, already sent.
        """
        inbound = self._protocol.receive_text(data)
        event = inbound.event
        if event is not None:
            self._record.events_received += 1
            self._on_event(event)
        self.emit(inbound.replies, source)
        if (
            event is not None
            and event.get("type") == "output_audio_buffer.clear"
            and not inbound.replies
        ):
            self._cut_audio()
        if self._protocol.finished:
            self.end_soon("closed")
        elif self._protocol.response_active:
            self._wake.set()
        return inbound.replies

    def receive_binary(self, source: object) -> None:
        self.emit(self._protocol.receive_binary(), source)

    def emit(self, events: list[Event], source: object = None) -> None:
        """Send events to the data channel and every sideband, in order, without waiting.

        An ``error`` caused by one sender's event goes back to that sender only (and
        nowhere if the sender is neither the data channel nor a sideband).
        """
        if self._ending is not None:
            return
        interrupted = False
        for event in events:
            data = orjson.dumps(event)
            kind = event["type"]
            if kind == "response.done":
                response = event["response"]
                self._track.end(response["id"])
                details = response.get("status_details") or {}
                interrupted = interrupted or details.get("reason") == "turn_detected"
            if kind == "error" and source is not None:
                if source is _DATA_CHANNEL:
                    self._to_channel(data)
                elif isinstance(source, Sideband):
                    source.deliver(data)
                continue
            self._to_channel(data)
            for sideband in self._sidebands:
                sideband.deliver(data)
            if self._ending is not None:  # the drop fault fired
                return
        for event in self._protocol.reflected():
            data = orjson.dumps(event)
            for sideband in self._sidebands:
                sideband.deliver(data)
        if interrupted:
            # VAD heard the caller over the reply: OpenAI cuts the audio still queued.
            self._cut_audio()

    def attach(self, sideband: Sideband) -> None:
        """A sideband joins: it gets every event from now on (no ``session.created``)."""
        self._sidebands.append(sideband)
        self._record.sidebands += 1

    def detach(self, sideband: Sideband) -> None:
        with contextlib.suppress(ValueError):
            self._sidebands.remove(sideband)

    def _to_channel(self, data: bytes) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            if len(self._pending) < MAX_PENDING_EVENTS:
                self._pending.append(data)
            return
        channel.send(data.decode())
        self._record.events_sent += 1
        if self._options.drop_after_events == self._record.events_sent:
            self.end_soon("dropped")

    def _cut_audio(self) -> None:
        cut = self._track.clear()
        if cut is not None:
            self.emit(self._protocol.playout_events("output_audio_buffer.cleared", cut))

    def _playout(self, kind: str, response_id: str) -> None:
        self.emit(self._protocol.playout_events(kind, response_id))

    # --- peer connection events ------------------------------------------------------------

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL or self._channel is not None:
            return  # OpenAI speaks on oai-events only
        self._channel = channel
        channel.on("message", self._on_message)
        if self._options.drop_after_events == 0:
            self.end_soon("dropped")
            return
        pending, self._pending = self._pending, []
        # session.created (Live: session.started) first (protocol.md §3, §10)
        self.emit(self._protocol.connect())
        for data in pending:
            if self._ending is None:
                self._to_channel(data)

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.receive_text(message, _DATA_CHANNEL)
        else:
            self.receive_binary(_DATA_CHANNEL)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._start(self._hear(track), "hear")

    def _on_connection_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed"):
            self.end_soon("client")

    # --- tasks -----------------------------------------------------------------------------

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(self._guard(work), name=f"rtrelay.mock.{name}"))

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        """Top of a call task: a bug ends the call instead of leaving it half alive."""
        try:
            await work
        except Exception:
            logger.exception("simulated call %s task failed", self.id)
            self.end_soon("error")

    async def _stream(self) -> None:
        protocol, track = self._protocol, self._track

        async def send(response_id: str, step: Step) -> None:
            self.emit(step.events)
            fmt = protocol.active_audio_format
            if step.audio and fmt is not None:
                track.play(response_id, to_pcm16(step.audio, fmt))
            if step.finished:
                track.end(response_id)  # a Realtime reply's response.done did this already
            if protocol.finished:
                self.end_soon("closed")

        await stream_responses(
            protocol, self._wake, self._options.realtime_pacing, send, lambda: self.ended
        )

    async def _hear(self, track: MediaStreamTrack) -> None:
        """Feed the caller's audio to the protocol, as ``input_audio_buffer.append`` would."""
        resampler = av.AudioResampler(format="s16", layout="mono", rate=PCM16_RATE)
        protocol, record = self._protocol, self._record
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            record.audio_frames_received += 1
            for out in resampler.resample(frame):
                self.emit(protocol.receive_audio(bytes(out.planes[0])[: 2 * out.samples]))
            if protocol.response_active:
                self._wake.set()

    async def _tick(self, ticker: Ticker) -> None:
        while not self.ended:
            await asyncio.sleep(ticker.interval)
            self.emit(ticker.tick())

    async def _ice_deadline(self) -> None:
        await asyncio.sleep(ICE_TIMEOUT)
        if self._pc.connectionState != "connected":
            logger.info("simulated call %s: no connection after %.0f s", self.id, ICE_TIMEOUT)
            self.end_soon("timeout")

    async def _expire(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.emit(expiry_events(self._protocol, seconds))
        self.end_soon("expired")

    # --- the end ---------------------------------------------------------------------------

    def end_soon(self, reason: str) -> asyncio.Task[None]:
        """End the call in the background (from a callback or one of its own tasks).

        The first reason given is the call's; later calls return the same ending. A Live
        session's data channel and sidebands first hear its ``session.closed``.
        """
        if self._ending is None and reason != "dropped":
            self.emit(final_events(self._protocol, reason))  # may fire the drop fault
        if self._ending is None:
            self._record.end_reason = reason
            self._ending = asyncio.create_task(self._end(reason), name="rtrelay.mock.call_end")
        return self._ending

    async def end(self, reason: str) -> None:
        """End the call (hang-up, shutdown) and wait until it has ended."""
        # Shielded: a caller giving up (a client that hung up on its hangup request) must
        # not leave the call half closed.
        await asyncio.shield(self.end_soon(reason))

    async def _end(self, reason: str) -> None:
        try:
            abrupt = reason == "dropped"
            for sideband in self._sidebands:
                if abrupt:
                    sideband.abort()
                else:
                    sideband.close(CLOSE_GOING_AWAY if reason == "shutdown" else 1000, reason)
            if abrupt:
                await self._silence()
            else:
                await self._flush()
            for task in self._tasks:
                await cancel_and_wait(task)
            await self._pc.close()
            self._track.stop()
            logger.info("simulated call %s ended: %s", self.id, reason)
        except Exception:
            logger.exception("simulated call %s failed to end cleanly", self.id)
        finally:
            self._on_end(self)
            self._record.ended.set()

    async def _flush(self) -> None:
        """Let the data channel hand its last events (``session.closed``) to SCTP."""
        channel = self._channel
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLUSH_TIMEOUT
        # aiortc signals no "drained" event a closing call could wait on: poll.
        while (  # noqa: ASYNC110
            channel is not None
            and channel.readyState == "open"
            and channel.bufferedAmount > 0
            and loop.time() < deadline
        ):
            await asyncio.sleep(0.01)

    async def _silence(self) -> None:
        """Stop ICE before closing: no DTLS close_notify or SCTP abort reaches the peer,
        which sees the call vanish as if the provider had crashed."""
        pc = self._pc
        dtls = {t.receiver.transport for t in pc.getTransceivers()}
        if pc.sctp is not None:
            dtls.add(pc.sctp.transport)
        for transport in dtls:
            await transport.transport.stop()
