"""Reading a client's upgrade request: credentials, model, shape, subprotocols.

Pure functions over headers and query: no I/O, so every browser and SDK quirk
(protocol.md §2) is covered by fast tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rtrelay.errors import MissingModel
from rtrelay.wire import (
    BETA_HEADER,
    BETA_SUBPROTOCOL,
    KEY_SUBPROTOCOL_PREFIX,
    NO_KEY,
    REALTIME_SUBPROTOCOL,
    is_beta_header,
)

__all__ = [
    "ClientHello",
    "ErrorStyle",
    "new_request_id",
    "parse_hello",
]

ErrorStyle = Literal["http", "event"]


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What a client asked for; ``credential`` is a secret and must never be logged."""

    request_id: str
    credential: str | None
    model: str | None
    beta: bool
    origin: str | None
    offered_protocols: tuple[str, ...]
    error_style: ErrorStyle

    @property
    def echo_protocol(self) -> str | None:
        """The only protocol rtrelay ever echoes; never one that carries a secret."""
        return REALTIME_SUBPROTOCOL if REALTIME_SUBPROTOCOL in self.offered_protocols else None

    def require_model(self) -> str:
        if not self.model:
            raise MissingModel(param="model")
        return self.model


def parse_hello(
    headers: Mapping[str, str],
    query: Mapping[str, str],
    *,
    request_id: str,
    handshake_errors: Literal["auto", "http", "event"] = "auto",
) -> ClientHello:
    """Read one upgrade request. ``headers`` must be case-insensitive (aiohttp's are)."""
    offered = tuple(
        p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    )
    credential = _credential(headers, offered)
    beta = BETA_SUBPROTOCOL in offered or is_beta_header(headers.get(BETA_HEADER, ""))
    # Azure clients name the deployment; OpenAI clients the model.
    model = query.get("model") or query.get("deployment") or None
    origin = headers.get("Origin") or None
    if handshake_errors == "auto":
        style: ErrorStyle = "event" if origin is not None or offered else "http"
    else:
        style = handshake_errors
    return ClientHello(
        request_id=request_id,
        credential=credential,
        model=model,
        beta=beta,
        origin=origin,
        offered_protocols=offered,
        error_style=style,
    )


def _credential(headers: Mapping[str, str], offered: tuple[str, ...]) -> str | None:
    """The first real key: ``Authorization: Bearer``, then ``api-key``, then a subprotocol."""
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip() not in NO_KEY:
        return value.strip()
    api_key = headers.get("api-key", "").strip()
    if api_key not in NO_KEY:
        return api_key
    for protocol in offered:
        if protocol.startswith(KEY_SUBPROTOCOL_PREFIX):
            key = protocol[len(KEY_SUBPROTOCOL_PREFIX) :].strip()
            if key not in NO_KEY:
                return key
    return None
