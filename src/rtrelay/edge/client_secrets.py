"""Minting short-lived client tokens for browsers (``ek_…``), GA and beta shapes.

A server holding an rtrelay key asks for a token; the browser then connects with
it (protocol.md §2). The same gate admits the request as it admits a session
(key, origin, model, budget), so a token is never minted that could not connect.
The token is bound to the key and, when given, the model; it does not carry the
session configuration (it is signed, not encrypted, and instructions are often
private): the client sends its ``session.update`` itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from rtrelay.edge.handshake import new_request_id, parse_hello
from rtrelay.edge.refuse import http_refusal
from rtrelay.edge.relay import Relay
from rtrelay.errors import InvalidApiKey, InvalidRequest, RelayError
from rtrelay.gate.admission import Ask, Refused
from rtrelay.gate.tokens import (
    beta_session_response,
    client_secret_response,
    parse_beta_session_request,
    parse_client_secret_request,
)

__all__ = ["mint_handler"]


def mint_handler(
    relay: Callable[[web.Request], Relay], *, beta: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    parse = parse_beta_session_request if beta else parse_client_secret_request
    respond = beta_session_response if beta else client_secret_response

    async def handle(request: web.Request) -> web.Response:
        request_id = new_request_id()
        r = relay(request)
        hello = parse_hello(request.headers, request.query, request_id=request_id)
        try:
            mint = parse(await _json_body(request))
            if hello.credential is not None and hello.credential.startswith("ek_"):
                raise InvalidApiKey("A client token cannot mint tokens; use an rtrelay key.")
            # The session admission checks that apply before any session exists.
            ask = Ask(hello.credential, mint.model, hello.origin, session=False)
            admission = await r.gate.admit(ask, r.route_plan)
            now = time.time()
            expires_at = mint.expires_at(now)
            key_id = admission.key_id or ""  # auth off: any token admits
            token = r.parts.tokens.mint(key_id, model=mint.model, expires_at=expires_at)
        except Refused as refused:
            return http_refusal(refused.error, request_id)
        except RelayError as error:
            return http_refusal(error, request_id)
        body = respond(token, expires_at, mint.session)
        headers = {"X-Request-Id": request_id, "Cache-Control": "no-store"}
        return web.json_response(body, headers=headers)

    return handle


async def _json_body(request: web.Request) -> object:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest("The request body is not valid JSON.") from exc
