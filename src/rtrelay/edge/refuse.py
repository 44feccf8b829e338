"""Refusing a client: telling it why, in the style it can read, and keeping a record.

Before the 101 a refusal is an HTTP response with the OpenAI-style JSON body.
Browsers never see that body (only 1006), so in ``event`` style the upgrade is
accepted just to send the ``error`` event and close with the table's code. Every
refusal is counted, logged and written to the ledger (``record_refusal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from aiohttp import WSMsgType, web

from rtrelay.bridge.pump import ClientLeg, error_frame
from rtrelay.edge.handshake import ClientHello
from rtrelay.edge.session_run import attempts_of
from rtrelay.errors import RelayError
from rtrelay.gate.admission import KeyInfo
from rtrelay.ledger.records import Refusal, clip
from rtrelay.ledger.writer import LedgerSink
from rtrelay.log import edge_log
from rtrelay.observe.metrics import Metrics
from rtrelay.route.router import Attempt

__all__ = ["http_refusal", "record_refusal", "refuse"]


def record_refusal(
    writer: LedgerSink,
    metrics: Metrics,
    hello: ClientHello,
    error: RelayError,
    key: KeyInfo | None,
    attempts: Sequence[Attempt] = (),
) -> None:
    """Count, log and write one refused handshake (against the key when it was known)."""
    event_style = hello.error_style == "event"
    metrics.handshakes.labels(error.code).inc()
    if error.code == "insufficient_quota":
        metrics.budget_refusals.labels("connect").inc()
    writer.submit(
        Refusal(
            request_id=hello.request_id,
            error_code=error.code,
            http_status=None if event_style else error.http_status,
            close_code=error.close_code if event_style else None,
            at=datetime.now(UTC),
            key_id=key.id if key else None,
            key_prefix=key.prefix if key else None,
            model=hello.model,
            origin=hello.origin,
            channels_tried=attempts_of(attempts),
        )
    )
    edge_log.info(
        "session refused",
        extra={
            "event": "refused",
            "request_id": hello.request_id,
            "code": error.code,
            "status": error.http_status,
            "close_code": error.close_code if event_style else None,
            "model": clip(hello.model, "model"),  # a client may send 8 KB of "model"
            "key_prefix": key.prefix if key else None,
        },
    )


def http_refusal(error: RelayError, request_id: str) -> web.Response:
    headers = {"X-Request-Id": request_id, **error.http_headers()}
    return web.Response(
        status=error.http_status or 500,
        body=orjson.dumps(error.to_http_body()),
        content_type="application/json",
        headers=headers,
    )


async def refuse(
    request: web.Request, hello: ClientHello, error: RelayError, *, live: bool = False
) -> web.StreamResponse:
    """Answer a refused handshake: HTTP, or (event style) the ``error`` event in the route's
    protocol shape (``live``: GPT-Live's) and the table's close code."""
    transport = request.transport
    if hello.error_style == "http" or transport is None or transport.is_closing():
        # (a client that already left can't be upgraded: the response just goes nowhere)
        return http_refusal(error, hello.request_id)
    protocols = (hello.echo_protocol,) if hello.echo_protocol else ()
    ws = ClientLeg(protocols=protocols, compress=False, autoclose=False, timeout=2.0)
    ws.headers["X-Request-Id"] = hello.request_id
    await ws.prepare(request)
    await ws.send_frame(error_frame(error, live=live), WSMsgType.TEXT)
    await ws.close(code=error.close_code, message=error.close_reason().encode())
    return ws
