"""Dialing WebRTC calls: the SDP offer, the metering sideband and the call controls.

A call is set up over HTTP (protocol.md §10): the offer is POSTed to the channel's
``/realtime/calls`` and the provider answers 201 with its SDP and
``Location: …/calls/{call_id}``. Channel choice and failover are the router's one rule
(``Router.failover``: breakers, retryable statuses, the deadline, the last refusal
kept), so here is only what differs from a WebSocket dial: the URL (the channel's
``base_url`` with ws→http), the body (raw SDP or multipart, the model mapped to the
channel's upstream name) and how an HTTP answer becomes a ``DialFailure``. The
sideband is an ordinary WebSocket dial (``Dialer``) of ``/realtime?call_id=…``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from rtrelay.config import Channel
from rtrelay.route.dial import MAX_REFUSAL_BODY, DialFailure, FailureKind
from rtrelay.route.router import Attempt, Router
from rtrelay.route.upstream import Upstream, UpstreamRequest
from rtrelay.wire import CALL_ID_PARAM, REALTIME_PATH_SUFFIX

__all__ = [
    "CALL_KINDS",
    "MAX_ANSWER_BYTES",
    "Answered",
    "CallDialer",
    "CallOffer",
    "http_base",
]

CALL_KINDS: Final = frozenset({"openai", "openai-compatible", "mock"})
"""Channel kinds that serve WebRTC calls (Azure's WebRTC endpoint is another protocol)."""

MAX_ANSWER_BYTES: Final = 256 * 1024
"""An SDP answer is a few KB; a provider sending more is not answering an offer."""

CALLS_SUFFIX: Final = "/realtime/calls"


@dataclass(frozen=True, slots=True)
class CallOffer:
    """What the client asked for: its SDP offer, the public model, the session config."""

    sdp: str
    model: str
    session: dict[str, Any] | None = None
    """The multipart ``session`` part (GA session config); ``None`` for a raw offer."""


@dataclass(frozen=True, slots=True)
class Answered:
    """A provider accepted the offer: its SDP answer and its own call id."""

    sdp: str
    provider_call_id: str
    channel: Channel
    attempts: list[Attempt]


def http_base(channel: Channel) -> str:
    """The channel's HTTP base: its ``base_url`` with ws→http, wss→https."""
    base = channel.base_url.rstrip("/")
    if base.startswith("ws://"):
        return "http://" + base[len("ws://") :]
    if base.startswith("wss://"):
        return "https://" + base[len("wss://") :]
    return base


class CallDialer:
    """Owns the HTTP client for call setup and controls; dials through ``router``."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=60),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def offer(
        self,
        offer: CallOffer,
        channels: Sequence[Channel],
        *,
        request_id: str,
        dial_timeout: float,
        deadline: float,
    ) -> Answered:
        """POST the offer to each channel in turn until one answers 201.

        Raises:
            RoutingFailed: no channel answered (the last refusal's status and body kept).
        """

        async def dial(channel: Channel, timeout: float) -> tuple[str, str]:
            return await self._post_offer(channel, offer, request_id, timeout)

        (sdp, call_id), channel, attempts = await self._router.failover(
            channels, dial, dial_timeout=dial_timeout, deadline=deadline
        )
        return Answered(sdp=sdp, provider_call_id=call_id, channel=channel, attempts=attempts)

    async def sideband(
        self, channel: Channel, call_id: str, *, request_id: str, timeout: float
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        """Attach a WebSocket sideband to the provider's call ``call_id``.

        Raises:
            DialFailure: refused, unreachable, or no answer within ``timeout`` s.
        """
        upstream = self._router.upstream(channel.name)
        query = urlencode({CALL_ID_PARAM: call_id})
        url = f"{channel.base_url.rstrip('/')}{REALTIME_PATH_SUFFIX}?{query}"
        request = UpstreamRequest(url=url, headers=_headers(upstream, request_id), tls=upstream.tls)
        return await self._router.dialer.dial(request, timeout)

    async def control(
        self,
        channel: Channel,
        call_id: str,
        control: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        request_id: str,
        timeout: float,
    ) -> tuple[int, bytes, str]:
        """POST ``…/calls/{call_id}/{control}`` at the provider: its status, body and type.

        Raises:
            DialFailure: unreachable, or no answer within ``timeout`` s.
        """
        upstream = self._router.upstream(channel.name)
        url = f"{http_base(channel)}{CALLS_SUFFIX}/{quote(call_id, safe='')}/{control}"
        headers = _headers(upstream, request_id)
        if content_type:
            headers["Content-Type"] = content_type
        async with (
            _failures(timeout),
            self._client().post(url, data=body, headers=headers, ssl=_ssl(upstream)) as response,
        ):
            body = await response.content.read(MAX_REFUSAL_BODY)
            return response.status, body, response.content_type

    async def hangup(self, channel: Channel, call_id: str, *, request_id: str) -> bool:
        """Hang the call up at the provider; ``True`` if it said so (2xx or already gone)."""
        try:
            status, _, _ = await self.control(
                channel, call_id, "hangup", request_id=request_id, timeout=5.0
            )
        except DialFailure:
            return False
        return status < 300 or status == 404

    async def _post_offer(
        self, channel: Channel, offer: CallOffer, request_id: str, timeout: float
    ) -> tuple[str, str]:
        upstream = self._router.upstream(channel.name)
        upstream_model = channel.upstream_model(offer.model)
        url = f"{http_base(channel)}{CALLS_SUFFIX}"
        headers = _headers(upstream, request_id)
        data: Any
        params: dict[str, str] = {}
        if offer.session is None:
            params["model"] = upstream_model
            headers["Content-Type"] = "application/sdp"
            data = offer.sdp.encode()
        else:
            data = aiohttp.FormData()
            data.add_field("sdp", offer.sdp, content_type="application/sdp")
            session = {**offer.session, "model": upstream_model}
            data.add_field(
                "session", orjson.dumps(session).decode(), content_type="application/json"
            )
        async with (
            _failures(timeout),
            self._client().post(
                url, data=data, params=params, headers=headers, ssl=_ssl(upstream)
            ) as response,
        ):
            body = await response.content.read(MAX_ANSWER_BYTES)
            if response.status != 201:
                raise DialFailure(
                    FailureKind.REFUSED,
                    f"HTTP {response.status}",
                    status=response.status,
                    body=body[:MAX_REFUSAL_BODY],
                    retry_after=response.headers.get("Retry-After"),
                )
            call_id = response.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]
        if not call_id:
            # A 201 without a call id cannot be metered: treat it as a broken provider.
            raise DialFailure(FailureKind.REFUSED, "201 without a Location", status=502, body=b"")
        return body.decode("utf-8", "replace"), call_id

    def _client(self) -> aiohttp.ClientSession:
        assert self._session is not None, "CallDialer.start() was not awaited"
        return self._session


def _headers(upstream: Upstream, request_id: str) -> dict[str, str]:
    """The channel's auth headers and the request id, as its WebSocket dials send them.

    ``Upstream.request`` is the one place that knows a channel kind's auth header; the
    headers do not depend on the model, so any model the channel serves will do.
    """
    model = next(iter(upstream.channel.models))
    return dict(upstream.request(model, beta=False, request_id=request_id).headers)


def _ssl(upstream: Upstream) -> Any:
    return True if upstream.tls is None else upstream.tls


@contextlib.asynccontextmanager
async def _failures(timeout: float) -> AsyncIterator[None]:
    """Turns aiohttp's failures and a timeout into ``DialFailure``, as ``Dialer.dial`` does."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError as exc:
        raise DialFailure(FailureKind.TIMEOUT, f"no answer within {timeout:g} s") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise DialFailure(FailureKind.CONNECT, type(exc).__name__) from exc
