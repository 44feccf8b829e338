"""The aiohttp boundary: open one WebSocket, and turn every aiohttp failure into ours.

aiohttp's ``ws_connect`` raises ``WSServerHandshakeError`` for any status but 101
and closes the response without reading its body, so the JSON that says *why*
(``{"error": {"code": "invalid_api_key", ...}}``) would be lost. A client
middleware sees the upgrade response before ``ws_connect`` inspects it, so
:func:`capture_handshake` reads up to 64 KiB of a refusal's body there and hands
it back through a ContextVar. A ContextVar rather than an attribute because the
middleware belongs to the session, not to one attempt: the variable is set by
the task that calls ``ws_connect``, and the middleware runs inside that same
task, so concurrent attempts never see each other's capture.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import time
from collections.abc import Mapping

import aiohttp
from aiohttp import ClientRequest, ClientResponse
from aiohttp.client_middlewares import ClientHandlerType
from multidict import CIMultiDict

from ._classify import MAX_ERROR_BODY, error_from_handshake
from ._exceptions import APIError, BadRequestError, ConnectTimeoutError, NetworkError, ServerError
from ._handshake import Handshake

__all__ = [
    "Opened",
    "capture_handshake",
    "network_error",
    "new_session",
    "open_websocket",
    "read_prefix",
]


@dataclasses.dataclass(slots=True)
class _Capture:
    """What the middleware saw of the upgrade response."""

    status: int | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=CIMultiDict)
    body: bytes = b""
    redirect: str | None = None


_capture: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar(
    "rtrelay_client_handshake", default=None
)


class _RedirectRefused(Exception):
    """Raised inside the middleware to stop aiohttp from following a redirect."""


async def read_prefix(resp: ClientResponse, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body; what arrived if the connection breaks meanwhile."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            chunk = await resp.content.read(limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (aiohttp.ClientError, OSError):
        pass  # a truncated body still says more than none; the status decides anyway
    return b"".join(chunks)


async def capture_handshake(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    """Session middleware: keep the status, headers and (for a refusal) the body.

    Redirects are refused rather than followed: the request carries a credential,
    and a realtime endpoint that redirects is misconfigured anyway.
    """
    resp = await handler(req)
    capture = _capture.get()
    if capture is None:
        return resp
    capture.status = resp.status
    capture.headers = CIMultiDict(resp.headers)
    if resp.status in (301, 302, 303, 307, 308):
        capture.redirect = resp.headers.get("Location", "")
        resp.close()
        raise _RedirectRefused
    if resp.status != 101:
        capture.body = await read_prefix(resp, MAX_ERROR_BODY)
    return resp


def new_session() -> aiohttp.ClientSession:
    """A session for one :class:`RealtimeConnection`: our middleware, no total timeout."""
    return aiohttp.ClientSession(
        middlewares=(capture_handshake,),
        timeout=aiohttp.ClientTimeout(total=None),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Opened:
    """An open WebSocket and what its handshake response said."""

    ws: aiohttp.ClientWebSocketResponse
    request_id: str | None
    subprotocol: str | None


async def open_websocket(
    session: aiohttp.ClientSession,
    handshake: Handshake,
    *,
    timeout: float | None,
    heartbeat: float | None,
    close_timeout: float,
    max_message_size: int,
) -> Opened:
    """Dial, within ``timeout`` seconds for TCP connect plus handshake.

    On a timeout the attempt is cancelled: aiohttp drops the half-open TCP
    connection; no WebSocket close is sent on a socket that never opened.

    Raises:
        APIError: every failure, as the most specific class (the aiohttp
            exception is chained as ``__cause__``).
    """
    capture = _Capture()
    token = _capture.set(capture)
    try:
        async with asyncio.timeout(timeout):
            ws = await session.ws_connect(
                handshake.url,
                headers=handshake.headers,
                protocols=handshake.protocols,
                heartbeat=heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=close_timeout),
                max_msg_size=max_message_size,
            )
    except TimeoutError as exc:
        raise ConnectTimeoutError(
            f"no WebSocket handshake from {_where(handshake)} within {timeout:g} s"
            if timeout is not None
            else f"timed out connecting to {_where(handshake)}"
        ) from exc
    except _RedirectRefused as exc:
        raise BadRequestError(
            f"{_where(handshake)} redirected to {capture.redirect!r}; redirects are not "
            "followed (the request carries a credential): use the final URL",
            status=capture.status,
            request_id=capture.headers.get("X-Request-Id"),
        ) from exc
    except aiohttp.WSServerHandshakeError as exc:
        raise _handshake_error(handshake, capture, exc) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise network_error(exc, _where(handshake)) from exc
    finally:
        _capture.reset(token)
    request_id = capture.headers.get("X-Request-Id")
    return Opened(ws=ws, request_id=request_id, subprotocol=ws.protocol)


def _handshake_error(
    handshake: Handshake, capture: _Capture, exc: aiohttp.WSServerHandshakeError
) -> APIError:
    status = capture.status if capture.status is not None else exc.status
    if status != 101:
        return error_from_handshake(status, capture.headers, capture.body, now=time.time())
    return ServerError(
        f"{_where(handshake)} answered 101 with an invalid WebSocket handshake: {exc.message}",
        request_id=capture.headers.get("X-Request-Id"),
    )


def network_error(exc: aiohttp.ClientError | OSError, where: str) -> NetworkError:
    """The failure to reach ``where`` (a URL without its query), in words."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return NetworkError(f"DNS lookup failed for {where}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return NetworkError(f"cannot connect to {where}: {_os_reason(exc)}")
    return NetworkError(f"connection to {where} failed: {_describe(exc)}")


def _where(handshake: Handshake) -> str:
    # The URL never carries a credential (it goes in a header or a subprotocol).
    return handshake.url.split("?", 1)[0]


def _os_reason(exc: aiohttp.ClientConnectorError) -> str:
    return exc.os_error.strerror or _describe(exc.os_error)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
