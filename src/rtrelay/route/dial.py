"""Dialing one upstream WebSocket, with a timeout, keeping a refusal's body.

aiohttp's ``ws_connect`` raises on a non-101 answer but discards the response
body, and the body is what says *why* the provider refused (its JSON error).
A session-level client middleware sees the upgrade response before
``ws_connect`` judges it, reads the body, and leaves it in a ContextVar: the
middleware runs inside the dialing task, so the caller reads it right back.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, ClientWSTimeout

from rtrelay.route.upstream import UpstreamRequest

__all__ = ["DialFailure", "Dialer", "FailureKind"]

MAX_REFUSAL_BODY: Final = 16 * 1024


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    body: bytes
    retry_after: str | None


_refusal: contextvars.ContextVar[_Refusal | None] = contextvars.ContextVar(
    "rtrelay_dial_refusal", default=None
)


async def _keep_refusal(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    response = await handler(request)
    if response.status != 101:
        try:
            body = await response.content.read(MAX_REFUSAL_BODY)
        except (aiohttp.ClientError, OSError):
            body = b""
        _refusal.set(_Refusal(response.status, body, response.headers.get("Retry-After")))
    return response


class FailureKind(enum.Enum):
    CONNECT = "connect"  # DNS, refused, reset before the answer
    TIMEOUT = "timeout"
    REFUSED = "refused"  # an HTTP answer other than 101

    def __str__(self) -> str:
        return self.value


class DialFailure(Exception):
    """One dial attempt failed; ``retryable`` says whether another channel may do better."""

    def __init__(
        self,
        kind: FailureKind,
        detail: str,
        *,
        status: int | None = None,
        body: bytes = b"",
        retry_after: str | None = None,
    ) -> None:
        self.kind = kind
        self.detail = detail
        self.status = status
        self.body = body
        self.retry_after = retry_after
        super().__init__(detail)

    @property
    def retryable(self) -> bool:
        """Connect errors, timeouts, 5xx and 429 may pass on another channel; 4xx won't."""
        if self.kind is not FailureKind.REFUSED:
            return True
        return self.status is not None and (self.status >= 500 or self.status == 429)

    @property
    def misconfigured(self) -> bool:
        """401/403: the channel's own credentials are wrong; the client did nothing wrong."""
        return self.status in (401, 403)


class Dialer:
    """Owns the aiohttp client session for the upstream leg."""

    def __init__(self, *, max_frame_bytes: int, heartbeat: float | None) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._heartbeat = heartbeat
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
        self._session = aiohttp.ClientSession(
            connector=connector,
            middlewares=(_keep_refusal,),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def dial(
        self, request: UpstreamRequest, timeout: float
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        """Open the upstream WebSocket or raise ``DialFailure``."""
        assert self._session is not None, "Dialer.start() was not awaited"
        _refusal.set(None)
        try:
            async with asyncio.timeout(timeout):
                return await self._session.ws_connect(
                    request.url,
                    headers=request.headers,
                    ssl=True if request.tls is None else request.tls,
                    autoclose=False,
                    autoping=True,
                    heartbeat=self._heartbeat,
                    max_msg_size=self._max_frame_bytes,
                    compress=0,
                    decode_text=False,
                    timeout=ClientWSTimeout(ws_receive=None, ws_close=5.0),
                )
        except TimeoutError as exc:
            raise DialFailure(
                FailureKind.TIMEOUT, f"no handshake answer within {timeout:g} s"
            ) from exc
        except aiohttp.WSServerHandshakeError as exc:
            refusal = _refusal.get()
            status = refusal.status if refusal else exc.status
            raise DialFailure(
                FailureKind.REFUSED,
                f"HTTP {status}",
                status=status,
                body=refusal.body if refusal else b"",
                retry_after=refusal.retry_after if refusal else None,
            ) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            # Said in words: the operator's fix is a channel's ca_file, or the provider's chain.
            why = getattr(exc.certificate_error, "verify_message", None) or "rejected"
            raise DialFailure(FailureKind.CONNECT, f"TLS certificate: {why}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DialFailure(FailureKind.CONNECT, type(exc).__name__) from exc
