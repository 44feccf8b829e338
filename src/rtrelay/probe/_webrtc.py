"""Observe a WebRTC call's setup the way a browser page makes it, with aiortc.

The page of OpenAI's WebRTC guide: an audio track and the ``oai-events`` data channel,
the SDP offer POSTed to ``/v1/realtime/calls``, the answer applied, then ICE, DTLS, the
channel opening and ``session.created`` on it. The probe sends no client event (nothing
is billed) and hangs up as an app server would (``POST …/calls/{id}/hangup``) before
closing its peer. The peer is ``rtrelay.rtc``'s, as the tests' and the bench's callers
are (an audio slot without a microphone: nothing is said); aiortc is imported only when
a WebRTC probe runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import aiohttp
from yarl import URL

from rtrelay.probe._observations import (
    CallObservation,
    HangupObservation,
    OfferObservation,
    SdpSummary,
)
from rtrelay.probe._redact import redact
from rtrelay.probe._target import OfferRequest
from rtrelay.probe._websocket import (
    Watch,
    body_error,
    read_bounded,
    request_failure,
    shown_headers,
)

if TYPE_CHECKING:
    from aiortc import RTCDataChannel, RTCPeerConnection

__all__ = ["observe_call", "summarise_sdp"]

_ANSWER_LIMIT: Final = 64 * 1024
"""An SDP answer is a few KB; one with many candidates stays far below this."""
_GONE: Final = frozenset({"failed", "closed"})


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def summarise_sdp(sdp: str) -> SdpSummary:
    """The sections, candidates and fingerprint of an SDP (RFC 8866 lines, ICE RFC 8839)."""
    audio = data_channel = False
    candidates: list[str] = []
    fingerprint = None
    for line in sdp.splitlines():
        if line.startswith("m=audio "):
            audio = True
        elif line.startswith("m=application ") and "SCTP" in line:
            data_channel = True
        elif line.startswith("a=candidate:"):
            # foundation component transport priority address port "typ" type …
            fields = line.split()
            if len(fields) >= 8 and fields[6] == "typ":
                seen = f"{fields[2].lower()} {fields[4]}:{fields[5]} {fields[7]}"
                if seen not in candidates:
                    candidates.append(seen)
        elif line.startswith("a=fingerprint:") and fingerprint is None:
            fingerprint = line.removeprefix("a=fingerprint:").strip()
    return SdpSummary(
        audio=audio,
        data_channel=data_channel,
        candidates=tuple(candidates),
        fingerprint=fingerprint,
    )


@dataclass(slots=True)
class _Progress:
    """What the peer's callbacks saw, as it happened."""

    start: float
    watch: Watch
    ice_state: str = "new"
    ice_ms: float | None = None
    connection_state: str = "new"
    connected_ms: float | None = None
    channel_ms: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.watch.settled or self.connection_state in _GONE

    def observed(self, *, timed_out: bool) -> CallObservation:
        return CallObservation(
            ice_state=self.ice_state,
            ice_ms=self.ice_ms,
            connection_state=self.connection_state,
            connected_ms=self.connected_ms,
            channel_ms=self.channel_ms,
            session=self.watch.observed(close=None, timed_out=timed_out),
        )


def _follow(pc: RTCPeerConnection, channel: RTCDataChannel, progress: _Progress) -> None:
    """Record the peer's ICE and connection states, the channel's opening and its events."""

    def ice() -> None:
        progress.ice_state = pc.iceConnectionState
        if pc.iceConnectionState in ("completed", "connected") and progress.ice_ms is None:
            progress.ice_ms = _elapsed_ms(progress.start)
        progress.changed.set()

    def connection() -> None:
        progress.connection_state = pc.connectionState
        if pc.connectionState == "connected" and progress.connected_ms is None:
            progress.connected_ms = _elapsed_ms(progress.start)
        progress.changed.set()

    def opened() -> None:
        progress.channel_ms = _elapsed_ms(progress.start)
        progress.changed.set()

    def message(data: str | bytes) -> None:
        if isinstance(data, bytes):
            progress.watch.types.append("(binary message)")
        else:
            progress.watch.text(data)
        progress.changed.set()

    pc.on("iceconnectionstatechange", ice)
    pc.on("connectionstatechange", connection)
    channel.on("open", opened)
    channel.on("message", message)


async def _post_offer(
    http: aiohttp.ClientSession,
    request: OfferRequest,
    sdp: str,
    *,
    ssl_context: ssl.SSLContext | None,
    timeout: float,
) -> tuple[OfferObservation, str]:
    """POST the offer; the answer as observed, and its SDP when it is a 201."""
    secret = request.secret
    start = time.perf_counter()
    try:
        async with (
            asyncio.timeout(timeout),
            http.post(
                request.url,
                data=sdp,
                headers=request.headers,
                ssl=ssl_context if ssl_context is not None else True,
                allow_redirects=False,
            ) as response,
        ):
            elapsed = _elapsed_ms(start)
            headers = shown_headers(response, secret)
            raw = await read_bounded(response, _ANSWER_LIMIT)
    except (TimeoutError, aiohttp.ClientError) as exc:
        failure = request_failure(exc, timeout, what="the offer POST", secure="https://")
        return OfferObservation(failure=redact(failure, secret)), ""
    text = raw.decode("utf-8", "replace")
    if response.status == 201:
        observed = OfferObservation(
            status=201,
            reason=response.reason or "",
            elapsed_ms=elapsed,
            headers=headers,
            sdp=summarise_sdp(text),
        )
        return observed, text
    body = redact(text, secret)
    return OfferObservation(
        status=response.status,
        reason=response.reason or "",
        elapsed_ms=elapsed,
        headers=headers,
        body=body,
        error=body_error(body, secret),
    ), ""


async def _hangup(
    http: aiohttp.ClientSession,
    request: OfferRequest,
    location: str | None,
    *,
    ssl_context: ssl.SSLContext | None,
    timeout: float,
) -> HangupObservation:
    """``POST <Location>/hangup`` with the offer's credential, as an app server would."""
    if not location:
        return HangupObservation(failure="the answer has no Location: the call has no id")
    url = URL(request.url).join(URL(location)) / "hangup"
    headers = {k: v for k, v in request.headers.items() if k != "Content-Type"}
    try:
        async with (
            asyncio.timeout(timeout),
            http.post(
                url,
                headers=headers,
                ssl=ssl_context if ssl_context is not None else True,
                allow_redirects=False,
            ) as response,
        ):
            raw = await read_bounded(response)
    except (TimeoutError, aiohttp.ClientError) as exc:
        failure = request_failure(exc, timeout, what="the hangup POST", secure="https://")
        return HangupObservation(failure=redact(failure, request.secret))
    error = None
    if response.status >= 400:
        error = body_error(redact(raw.decode("utf-8", "replace"), request.secret), request.secret)
    return HangupObservation(status=response.status, error=error)


async def observe_call(
    request: OfferRequest,
    *,
    loopback: bool,
    ssl_context: ssl.SSLContext | None,
    timeout: float,
) -> tuple[OfferObservation, CallObservation | None]:
    """Offer, and if answered, follow the call to ``session.created``; then hang up.

    Args:
        request: the POST to send (its secret is only ever put on the wire).
        loopback: the server is on this machine: offer the 127.0.0.1 candidate alone.
        ssl_context: how to verify an https:// server (``None``: system defaults).
        timeout: bound on the POST, and on the wait from the answer to ``session.created``.
    """
    from aiortc import RTCSessionDescription

    from rtrelay.rtc import local_offer, new_peer

    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    pc, channel = new_peer()
    try:
        async with aiohttp.ClientSession(timeout=client_timeout) as http:
            sdp = await local_offer(pc, loopback=loopback)
            start = time.perf_counter()
            progress = _Progress(start, Watch(request.secret, start))
            _follow(pc, channel, progress)
            offer, answer = await _post_offer(
                http, request, sdp, ssl_context=ssl_context, timeout=timeout
            )
            if not offer.answered:
                return offer, None
            try:
                await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            except Exception as exc:  # aiortc raises ValueError and others on a bad SDP
                rejected = redact(f"{type(exc).__name__}: {exc}", request.secret)
                return offer, CallObservation(rejected=rejected)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    while not progress.done:
                        progress.changed.clear()
                        await progress.changed.wait()
            # Seen before the hangup, which closes the connection.
            observed = progress.observed(timed_out=not progress.done)
            hangup = await _hangup(
                http,
                request,
                offer.headers.get("Location"),
                ssl_context=ssl_context,
                timeout=timeout,
            )
    finally:
        await pc.close()
    return offer, dataclasses.replace(observed, hangup=hangup)
