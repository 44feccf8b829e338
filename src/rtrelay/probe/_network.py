"""Observe DNS, TCP and TLS one by one, so each failure is attributed to its step.

aiohttp would do all three inside ``ws_connect`` and report one error; doing
them by hand first tells a name that does not resolve from a closed port from
a certificate the client does not trust.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
import time
from contextlib import suppress
from typing import Final

from rtrelay.probe._observations import (
    DnsObservation,
    TcpAttempt,
    TcpObservation,
    TcpOutcome,
    TlsObservation,
)

__all__ = ["observe_dns", "observe_tcp_tls"]

_UNREACHABLE: Final = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL})
_CLOSE_GRACE: Final = 1.0
"""Seconds allowed for a polite close of the probe's own diagnostic connection."""


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def observe_dns(host: str, port: int, timeout: float) -> DnsObservation:
    """Resolve ``host`` the way the connection will (``getaddrinfo``, TCP only)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return DnsObservation(host=host, port=port, addresses=(host,), literal=True)
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return DnsObservation(
            host=host, port=port, error=exc.strerror or str(exc), elapsed_ms=_elapsed_ms(start)
        )
    except TimeoutError:
        return DnsObservation(
            host=host,
            port=port,
            error=f"no answer within {timeout:g} s",
            elapsed_ms=_elapsed_ms(start),
        )
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    return DnsObservation(host=host, port=port, addresses=addresses, elapsed_ms=_elapsed_ms(start))


async def observe_tcp_tls(
    dns: DnsObservation,
    *,
    tls: ssl.SSLContext | None,
    timeout: float,
) -> tuple[TcpObservation, TlsObservation | None]:
    """Connect to each resolved address until one answers, then do the TLS handshake on it.

    The connection is the probe's own and is closed here; aiohttp opens its own
    for the upgrade.
    """
    attempts: list[TcpAttempt] = []
    for address in dns.addresses:
        attempt, streams = await _connect(address, dns.port, timeout)
        attempts.append(attempt)
        if streams is None:
            continue
        writer = streams[1]
        try:
            tls_seen = await _handshake(writer, tls, dns.host, timeout) if tls else None
        finally:
            await _close(writer)
        return TcpObservation(attempts=tuple(attempts)), tls_seen
    return TcpObservation(attempts=tuple(attempts)), None


async def _connect(
    address: str, port: int, timeout: float
) -> tuple[TcpAttempt, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            streams = await asyncio.open_connection(address, port)
    except TimeoutError:
        detail = f"nothing within {timeout:g} s"
        return TcpAttempt(address=address, port=port, outcome="timeout", detail=detail), None
    except ConnectionRefusedError as exc:
        return _failed(address, port, "refused", exc, start), None
    except OSError as exc:
        outcome: TcpOutcome = "unreachable" if exc.errno in _UNREACHABLE else "error"
        return _failed(address, port, outcome, exc, start), None
    attempt = TcpAttempt(
        address=address, port=port, outcome="connected", elapsed_ms=_elapsed_ms(start)
    )
    return attempt, streams


def _failed(address: str, port: int, outcome: TcpOutcome, exc: OSError, start: float) -> TcpAttempt:
    return TcpAttempt(
        address=address,
        port=port,
        outcome=outcome,
        detail=exc.strerror or str(exc),
        elapsed_ms=_elapsed_ms(start),
    )


async def _handshake(
    writer: asyncio.StreamWriter, context: ssl.SSLContext, host: str, timeout: float
) -> TlsObservation:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            await writer.start_tls(context, server_hostname=host, ssl_handshake_timeout=timeout)
    except ssl.SSLCertVerificationError as exc:
        return TlsObservation(
            ok=False,
            elapsed_ms=_elapsed_ms(start),
            problem="certificate",
            verify_code=exc.verify_code,
            detail=exc.verify_message or str(exc),
        )
    except ssl.SSLError as exc:
        # A plain-HTTP port answers the ClientHello with text OpenSSL cannot parse.
        not_tls = exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST")
        return TlsObservation(
            ok=False,
            elapsed_ms=_elapsed_ms(start),
            problem="not_tls" if not_tls else "handshake",
            detail=exc.reason or str(exc),
        )
    except TimeoutError:
        return TlsObservation(ok=False, elapsed_ms=_elapsed_ms(start), problem="timeout")
    except (ConnectionError, OSError) as exc:
        return TlsObservation(
            ok=False, elapsed_ms=_elapsed_ms(start), problem="reset", detail=str(exc)
        )
    elapsed = _elapsed_ms(start)
    ssl_object: ssl.SSLObject | None = writer.get_extra_info("ssl_object")
    if ssl_object is None:  # pragma: no cover - start_tls succeeded, so it exists
        return TlsObservation(ok=True, elapsed_ms=elapsed)
    cert = ssl_object.getpeercert() or {}
    cipher = ssl_object.cipher()
    return TlsObservation(
        ok=True,
        elapsed_ms=elapsed,
        version=ssl_object.version(),
        cipher=cipher[0] if cipher else None,
        subject=_common_name(cert.get("subject", ())),
        issuer=_common_name(cert.get("issuer", ())),
        not_after=str(cert["notAfter"]) if "notAfter" in cert else None,
    )


def _common_name(name: object) -> str | None:
    """``getpeercert()``'s nested RDN tuples → the commonName (or organisation)."""
    fields: dict[str, str] = {}
    if isinstance(name, tuple):
        for rdn in name:
            for key, value in rdn:
                fields.setdefault(str(key), str(value))
    return fields.get("commonName") or fields.get("organizationName")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    # A TLS close waits for the peer's close_notify; a rude peer must not stall the probe.
    with suppress(OSError, TimeoutError):
        async with asyncio.timeout(_CLOSE_GRACE):
            await writer.wait_closed()
