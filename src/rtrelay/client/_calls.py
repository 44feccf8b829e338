"""``RealtimeCalls``: WebRTC calls for app servers, through rtrelay or to OpenAI directly.

A browser or phone makes the offer; the server holding the key posts it
(``POST /v1/realtime/calls``, either of OpenAI's body shapes), hands the SDP answer
back, and joins the call with a sideband (``GET /v1/realtime?call_id=…``): a
:class:`RealtimeConnection` like any other, so tools and business logic stay off the
device. Failures are this library's typed exceptions, never aiohttp's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from yarl import URL

from rtrelay.rtc import offer_request
from rtrelay.wire import CALL_ID_PARAM, REALTIME_PATH_SUFFIX

from ._classify import MAX_ERROR_BODY, error_from_handshake
from ._config import DEFAULT_CONNECTION_TIMEOUT
from ._connection import RealtimeConnection
from ._exceptions import ConnectTimeoutError, ServerError
from ._handshake import build_handshake, build_url
from ._transport import network_error, read_prefix

__all__ = ["CallAnswer", "RealtimeCalls"]

_CALLS_SUFFIX: Final = "/calls"


@dataclasses.dataclass(frozen=True, slots=True)
class CallAnswer:
    """A call the server answered (201).

    Attributes:
        sdp: the SDP answer, for the caller's ``setRemoteDescription``.
        call_id: the call's id, the last segment of ``location`` (through rtrelay a
            relay id, ``rcall_…``): for :meth:`RealtimeCalls.sideband` and ``hangup``.
        location: the ``Location`` header as sent.
        request_id: ``X-Request-Id`` of the answer, when present.
    """

    sdp: str = dataclasses.field(repr=False)
    call_id: str
    location: str
    request_id: str | None


def _realtime_url(url: str) -> URL:
    """The http(s) Realtime URL (``…/v1/realtime``) for a base, Realtime or calls URL."""
    parsed = URL(url)
    scheme = {"ws": "http", "wss": "https"}.get(parsed.scheme, parsed.scheme)
    if scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"expected an absolute http(s):// or ws(s):// URL, got {url!r}")
    path = parsed.path.rstrip("/").removesuffix(_CALLS_SUFFIX)
    if not path.endswith(REALTIME_PATH_SUFFIX):
        path += REALTIME_PATH_SUFFIX
    return parsed.with_scheme(scheme).with_path(path).with_query(None)


class RealtimeCalls:
    """Create WebRTC calls from SDP offers, attach sidebands to them, hang them up.

    Use as ``async with RealtimeCalls("http://127.0.0.1:8080/v1", api_key=key) as calls:``::

        answer = await calls.create(offer_sdp, model="gpt-realtime")
        # give answer.sdp to the caller, then join the call:
        async with RealtimeClient(calls.sideband(answer.call_id)) as sideband:
            await sideband.update_session(instructions="Be brief.")
        await calls.hangup(answer.call_id)

    Args:
        url: a base URL (``http://host:8080/v1``; ``ws(s)://`` is accepted), the
            Realtime URL or the calls URL.
        api_key: the credential (an ``rk_``/``sk-`` key; the key that creates a call
            is the one that may attach to it and hang it up through rtrelay).
        headers: extra headers for every request and sideband handshake.
        timeout: seconds for each request (connect plus answer); ``None``: no limit.

    Raises:
        ValueError: a bad URL, or a key that cannot travel in a header (never echoed).
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = DEFAULT_CONNECTION_TIMEOUT,
    ) -> None:
        self._realtime = _realtime_url(url)
        self._calls = self._realtime / _CALLS_SUFFIX.lstrip("/")
        self._api_key = api_key
        self._extra = dict(headers or {})
        # The sidebands' handshake headers (the key checked for a header): the POSTs' too.
        self._headers = build_handshake(
            str(self._realtime),
            api_key=api_key,
            model=None,
            auth="header",
            beta=False,
            azure=False,
            headers=headers,
        ).headers
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """Where offers are posted (never carries the key)."""
        return str(self._calls)

    def __repr__(self) -> str:
        return f"<RealtimeCalls {self.url}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session; idempotent. Sidebands are closed by their owners."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def create(
        self,
        sdp: str,
        *,
        model: str | None = None,
        session: Mapping[str, Any] | None = None,
    ) -> CallAnswer:
        """Post a caller's SDP offer; the answer and the call's id.

        Without ``session`` the offer goes raw (``application/sdp``, ``?model=``); with
        it, as multipart ``sdp`` + ``session`` (the GA session config, as the ``openai``
        SDK's ``calls.create`` sends it; ``model`` is put in it unless it names one).

        Raises:
            APIError: the server refused the offer (its status and JSON error, classified
                as for a refused handshake), could not be reached (:class:`NetworkError`,
                :class:`ConnectTimeoutError`), or answered 201 without an SDP answer or a
                ``Location`` (:class:`ServerError`).
        """
        offer = offer_request(sdp, model=model, session=session)
        status, answer_headers, body = await self._post(
            self._calls.update_query(offer.params), offer.data, offer.headers, what="the offer"
        )
        request_id = answer_headers.get("X-Request-Id")
        text = body.decode("utf-8", "replace")
        location = answer_headers.get("Location", "")
        if not text.lstrip().startswith("v=0") or not location.strip("/"):
            lacks = "an SDP answer" if not text.lstrip().startswith("v=0") else "a Location"
            raise ServerError(
                f"{self._calls} answered {status} without {lacks}", request_id=request_id
            )
        return CallAnswer(
            sdp=text,
            call_id=location.rstrip("/").rsplit("/", 1)[-1],
            location=location,
            request_id=request_id,
        )

    def sideband(self, call_id: str, **options: Any) -> RealtimeConnection:
        """A connection to the call's sideband (``/realtime?call_id=``), not yet opened.

        ``options`` are :class:`RealtimeConnection`'s (``max_retries``, ``on_error``…);
        the key and headers are this object's. No ``session.created`` comes first on a
        sideband: send ``session.update`` and wait for ``session.updated``.
        """
        url = build_url(str(self._realtime.with_query({CALL_ID_PARAM: call_id})))
        return RealtimeConnection(
            url, api_key=self._api_key, headers=self._extra or None, **options
        )

    async def hangup(self, call_id: str) -> None:
        """End the call (``POST …/calls/{call_id}/hangup``).

        Raises:
            APIError: refused (an unknown call, or another key's, is :class:`NotFoundError`)
                or unreachable.
        """
        await self._post(self._calls / call_id / "hangup", None, {}, what="the hangup")

    async def _post(
        self,
        url: URL,
        data: str | aiohttp.FormData | None,
        headers: Mapping[str, str],
        *,
        what: str,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """POST; a 2xx's status, headers and body, or the typed failure raised."""
        where = str(url.with_query(None))
        sent = {**self._headers, **headers}
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._http().post(url, data=data, headers=sent, allow_redirects=False) as resp,
            ):
                body = await read_prefix(resp, MAX_ERROR_BODY)
        except TimeoutError as exc:
            raise ConnectTimeoutError(f"no answer from {where} within {self._timeout:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise network_error(exc, where) from exc
        if not 200 <= resp.status < 300:
            raise error_from_handshake(resp.status, resp.headers, body, now=time.time(), what=what)
        return resp.status, resp.headers, body

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session
