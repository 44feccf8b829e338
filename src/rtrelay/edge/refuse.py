"""Telling a client why it was refused, in the style it can read.

Before the 101 a refusal is an HTTP response with the OpenAI-style JSON body.
Browsers never see that body (only 1006), so in ``event`` style the upgrade is
accepted just to send the ``error`` event and close with the table's code.
"""

from __future__ import annotations

import orjson
from aiohttp import WSMsgType, web

from rtrelay.bridge.pump import ClientLeg, new_event_id
from rtrelay.edge.handshake import ClientHello
from rtrelay.errors import RelayError

__all__ = ["http_refusal", "refuse"]


def http_refusal(error: RelayError, request_id: str) -> web.Response:
    headers = {"X-Request-Id": request_id, **error.http_headers()}
    return web.Response(
        status=error.http_status or 500,
        body=orjson.dumps(error.to_http_body()),
        content_type="application/json",
        headers=headers,
    )


async def refuse(request: web.Request, hello: ClientHello, error: RelayError) -> web.StreamResponse:
    transport = request.transport
    if hello.error_style == "http" or transport is None or transport.is_closing():
        # (a client that already left can't be upgraded: the response just goes nowhere)
        return http_refusal(error, hello.request_id)
    protocols = (hello.echo_protocol,) if hello.echo_protocol else ()
    ws = ClientLeg(protocols=protocols, compress=False, autoclose=False, timeout=2.0)
    ws.headers["X-Request-Id"] = hello.request_id
    await ws.prepare(request)
    await ws.send_frame(orjson.dumps(error.to_event(new_event_id())), WSMsgType.TEXT)
    await ws.close(code=error.close_code, message=error.close_reason().encode())
    return ws
