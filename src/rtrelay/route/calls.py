"""Dialing WebRTC calls: the SDP offer, the metering sideband and the call controls.

A call is set up over HTTP (protocol.md §10): the offer is POSTed to the channel's
``/realtime/calls`` and the provider answers 201 with its SDP and
``Location: …/calls/{call_id}``. A GPT-Live session is the same thing spelled another
way (``CallRoute``): a JSON ``{session, transport: {sdp}}`` POSTed to ``/live/sessions``,
answered with JSON ``{session: {id}, transport: {sdp}}``, joined at
``/live/sessions/{id}/attach`` and controlled under ``/live/sessions/{id}/``.

Channel choice and failover are the router's one rule (``Router.failover``: breakers,
retryable statuses, the deadline, the last refusal kept), so here is only what differs
from a WebSocket dial: the URL (the channel's ``base_url`` with ws→http), the body (raw
SDP, multipart or JSON, the model mapped to the channel's upstream name) and how an HTTP
answer becomes a ``DialFailure``. The sideband is an ordinary WebSocket dial
(``Dialer``) of ``/realtime?call_id=…`` or ``/live/sessions/{id}/attach``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from rtrelay.config import Channel
from rtrelay.route.dial import MAX_REFUSAL_BODY, DialFailure, FailureKind
from rtrelay.route.families import family_of
from rtrelay.route.router import Attempt, Router
from rtrelay.route.upstream import Upstream, UpstreamRequest
from rtrelay.wire import (
    CALL_CONTROLS,
    CALL_ID_PARAM,
    CALLS_PATH,
    LIVE_ATTACH_SUFFIX,
    LIVE_CONTROLS,
    LIVE_SESSIONS_PATH,
    OPENAI_PATH,
    REALTIME_PATH_SUFFIX,
)

__all__ = [
    "CALL_KINDS",
    "LIVE_SESSIONS",
    "MAX_ANSWER_BYTES",
    "REALTIME_CALLS",
    "Answered",
    "CallDialer",
    "CallOffer",
    "CallRoute",
    "call_route",
    "http_base",
]

CALL_KINDS: Final = frozenset({"openai", "openai-compatible", "mock"})
"""Channel kinds that serve WebRTC calls (Azure's WebRTC endpoint is another protocol)."""

MAX_ANSWER_BYTES: Final = 256 * 1024
"""An SDP answer is a few KB; a provider sending more is not answering an offer."""

_V1: Final = OPENAI_PATH.removesuffix(REALTIME_PATH_SUFFIX)


@dataclass(frozen=True, slots=True)
class CallRoute:
    """Where one protocol's WebRTC sessions are set up, joined and controlled.

    ``path`` is the public path (the relay's and OpenAI's, ``/v1/…``); at a provider the
    same path follows the channel's base URL (``…/v1``) without its ``/v1``.
    """

    family: Literal["realtime", "live"]
    path: str
    controls: tuple[str, ...]
    """The ``POST {path}/{id}/<control>`` a provider serves."""

    @property
    def suffix(self) -> str:
        return self.path.removeprefix(_V1)

    def sideband_url(self, channel: Channel, provider_id: str) -> str:
        """The provider's sideband WebSocket for session ``provider_id``."""
        base = channel.base_url.rstrip("/")
        if self.family == "live":
            return f"{base}{self.suffix}/{quote(provider_id, safe='')}{LIVE_ATTACH_SUFFIX}"
        return f"{base}{REALTIME_PATH_SUFFIX}?{urlencode({CALL_ID_PARAM: provider_id})}"


REALTIME_CALLS: Final = CallRoute("realtime", CALLS_PATH, CALL_CONTROLS)
"""Realtime calls: ``POST /v1/realtime/calls``, sideband ``/v1/realtime?call_id=``."""
LIVE_SESSIONS: Final = CallRoute("live", LIVE_SESSIONS_PATH, LIVE_CONTROLS)
"""GPT-Live over WebRTC: ``POST /v1/live/sessions``, sideband ``…/{id}/attach``."""


def call_route(model: str) -> CallRoute:
    """The route a call of ``model`` was set up on (a registry row names its model only)."""
    return LIVE_SESSIONS if family_of(model) == "live" else REALTIME_CALLS


@dataclass(frozen=True, slots=True)
class CallOffer:
    """What the client asked for: its SDP offer, the public model, the session config."""

    sdp: str
    model: str
    session: dict[str, Any] | None = None
    """The multipart ``session`` part (GA session config); ``None`` for a raw offer; a
    Live session's ``session`` object."""
    route: CallRoute = REALTIME_CALLS
    body: dict[str, Any] | None = None
    """A Live request's whole JSON body, forwarded with its model mapped to the channel's."""
    fork_of: str | None = None
    """A Live fork: the provider's id of the session forked (``POST …/{id}/fork``)."""


@dataclass(frozen=True, slots=True)
class Answered:
    """A provider accepted the offer: its SDP answer and its own call id."""

    sdp: str
    provider_call_id: str
    channel: Channel
    attempts: list[Attempt]
    body: bytes = b""
    """The provider's whole answer (a Live session's JSON; a Realtime call's SDP)."""
    status: int = 201
    location: str | None = None


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

        async def dial(channel: Channel, timeout: float) -> Answered:
            if offer.route.family == "live":
                return await self._post_live(channel, offer, request_id, timeout)
            return await self._post_offer(channel, offer, request_id, timeout)

        answered, channel, attempts = await self._router.failover(
            channels, dial, dial_timeout=dial_timeout, deadline=deadline
        )
        return replace(answered, channel=channel, attempts=attempts)

    async def sideband(
        self,
        channel: Channel,
        call_id: str,
        *,
        request_id: str,
        timeout: float,
        route: CallRoute = REALTIME_CALLS,
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        """Attach a WebSocket sideband to the provider's call ``call_id``.

        Raises:
            DialFailure: refused, unreachable, or no answer within ``timeout`` s.
        """
        upstream = self._router.upstream(channel.name)
        url = route.sideband_url(channel, call_id)
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
        route: CallRoute = REALTIME_CALLS,
    ) -> tuple[int, bytes, str]:
        """POST ``…/calls/{call_id}/{control}`` at the provider: its status, body and type.

        Raises:
            DialFailure: unreachable, or no answer within ``timeout`` s.
        """
        upstream = self._router.upstream(channel.name)
        headers = _headers(upstream, request_id)
        if content_type:
            headers["Content-Type"] = content_type
        async with (
            _failures(timeout),
            self._client().post(
                _session_url(channel, route, call_id, control),
                data=body,
                headers=headers,
                ssl=_ssl(upstream),
            ) as response,
        ):
            body = await response.content.read(MAX_REFUSAL_BODY)
            return response.status, body, response.content_type

    @contextlib.asynccontextmanager
    async def fetch(
        self,
        channel: Channel,
        call_id: str,
        what: str,
        *,
        request_id: str,
        timeout: float,
        route: CallRoute,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``GET …/{call_id}/{what}`` at the provider (a Live session's recording), its
        answer open for streaming; ``timeout`` bounds the answer's headers only.

        Raises:
            DialFailure: unreachable, or no answer within ``timeout`` s.
        """
        upstream = self._router.upstream(channel.name)
        url = _session_url(channel, route, call_id, what)
        async with _failures(timeout):
            response = await self._client().get(
                url, headers=_headers(upstream, request_id), ssl=_ssl(upstream)
            )
        try:
            yield response
        finally:
            response.release()

    async def hangup(
        self, channel: Channel, call_id: str, *, request_id: str, route: CallRoute = REALTIME_CALLS
    ) -> bool:
        """Hang the call up at the provider; ``True`` if it said so (2xx or already gone)."""
        try:
            status, _, _ = await self.control(
                channel, call_id, "hangup", request_id=request_id, timeout=5.0, route=route
            )
        except DialFailure:
            return False
        return status < 300 or status == 404

    async def _post_offer(
        self, channel: Channel, offer: CallOffer, request_id: str, timeout: float
    ) -> Answered:
        upstream = self._router.upstream(channel.name)
        upstream_model = channel.upstream_model(offer.model)
        url = f"{http_base(channel)}{REALTIME_CALLS.suffix}"
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
            body = await _answer(response, (201,))
            location = response.headers.get("Location", "")
        call_id = location.rstrip("/").rsplit("/", 1)[-1]
        if not call_id:
            # A 201 without a call id cannot be metered: treat it as a broken provider.
            raise DialFailure(FailureKind.REFUSED, "201 without a Location", status=502, body=b"")
        sdp = body.decode("utf-8", "replace")
        return Answered(sdp, call_id, channel, [], body=body, location=location)

    async def _post_live(
        self, channel: Channel, offer: CallOffer, request_id: str, timeout: float
    ) -> Answered:
        """POST a Live session (or a fork of one): JSON in, JSON ``{session: {id},
        transport: {sdp}}`` out (``openai/types/live/live_create_response.py``)."""
        upstream = self._router.upstream(channel.name)
        request = dict(offer.body or {})
        if offer.fork_of is None:
            session = {**(offer.session or {}), "model": channel.upstream_model(offer.model)}
            request["session"] = session
        url = _session_url(channel, offer.route, offer.fork_of, "fork")
        headers = _headers(upstream, request_id)
        async with (
            _failures(timeout),
            self._client().post(url, json=request, headers=headers, ssl=_ssl(upstream)) as response,
        ):
            body = await _answer(response, (200, 201))
            status, location = response.status, response.headers.get("Location")
        session_id, sdp = _live_answer(body)
        if not session_id or not sdp:
            # an answer without an id cannot be metered: treat it as a broken provider
            raise DialFailure(
                FailureKind.REFUSED, "an answer without session.id", status=502, body=b""
            )
        return Answered(sdp, session_id, channel, [], body=body, status=status, location=location)

    def _client(self) -> aiohttp.ClientSession:
        assert self._session is not None, "CallDialer.start() was not awaited"
        return self._session


async def _answer(response: aiohttp.ClientResponse, ok: tuple[int, ...]) -> bytes:
    """An offer's answer body, or the provider's refusal as a ``DialFailure``."""
    body = await response.content.read(MAX_ANSWER_BYTES)
    if response.status not in ok:
        raise DialFailure(
            FailureKind.REFUSED,
            f"HTTP {response.status}",
            status=response.status,
            body=body[:MAX_REFUSAL_BODY],
            retry_after=response.headers.get("Retry-After"),
        )
    return body


def _live_answer(body: bytes) -> tuple[str, str]:
    """``session.id`` and ``transport.sdp`` of a Live answer (empty where missing)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", ""
    if not isinstance(answer, dict):
        return "", ""
    session, transport = answer.get("session"), answer.get("transport")
    session_id = session.get("id") if isinstance(session, dict) else None
    sdp = transport.get("sdp") if isinstance(transport, dict) else None
    return (
        session_id if isinstance(session_id, str) else "",
        sdp if isinstance(sdp, str) else "",
    )


def _session_url(channel: Channel, route: CallRoute, call_id: str | None, action: str) -> str:
    """``{path}`` at the provider, or ``{path}/{call_id}/{action}`` for a session's own."""
    url = f"{http_base(channel)}{route.suffix}"
    return url if call_id is None else f"{url}/{quote(call_id, safe='')}/{action}"


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
