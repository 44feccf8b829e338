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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal

from aiohttp import web

from rtrelay.edge.handshake import new_request_id, parse_hello
from rtrelay.edge.refuse import http_refusal
from rtrelay.edge.relay import Relay
from rtrelay.errors import InvalidApiKey, InvalidRequest, RelayError
from rtrelay.gate.admission import Ask, Refused
from rtrelay.gate.tokens import (
    ClientSecretRequest,
    beta_session_response,
    client_secret_response,
    parse_beta_session_request,
    parse_client_secret_request,
    parse_translation_secret_request,
    translation_secret_response,
)
from rtrelay.route.families import Family

Respond = Callable[[str, int, Mapping[str, Any]], dict[str, Any]]

__all__ = ["Shape", "mint_handler"]


Shape = Literal["ga", "beta", "translation"]

_SHAPES: Final[dict[Shape, tuple[Callable[[object], ClientSecretRequest], Respond, Family]]] = {
    "ga": (parse_client_secret_request, client_secret_response, "realtime"),
    "beta": (parse_beta_session_request, beta_session_response, "realtime"),
    "translation": (parse_translation_secret_request, translation_secret_response, "translation"),
}
"""Per endpoint: its body, its answer and the route its tokens open
(``/v1/realtime/client_secrets``, ``/v1/realtime/sessions``,
``/v1/realtime/translations/client_secrets``)."""


def mint_handler(
    relay: Callable[[web.Request], Relay], *, shape: Shape
) -> Callable[[web.Request], Awaitable[web.Response]]:
    parse, respond, family = _SHAPES[shape]

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
            admission = await r.gate.admit(ask, r.route_for(family))
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
