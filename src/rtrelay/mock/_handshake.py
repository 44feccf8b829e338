"""Decide how to answer an upgrade request before doing any I/O (as aiohttp's ``_handshake``).

Which endpoint, which model, which shape, which key, and whether to refuse: all from the
request line, headers and offered subprotocols, plus the options in force.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import orjson

from rtrelay.mock import _errors as errors
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._options import Dialect, MockOptions
from rtrelay.wire import (
    AZURE_PREVIEW_PATH,
    AZURE_V1_PATH,
    BETA_HEADER,
    BETA_SUBPROTOCOL,
    DEFAULT_MODEL,
    KEY_SUBPROTOCOL_PREFIX,
    NO_KEY,
    OPENAI_PATH,
    is_beta_header,
)

__all__ = [
    "Accept",
    "Endpoint",
    "Refuse",
    "credential",
    "decide",
    "decide_http",
    "mask_key",
    "offered_subprotocols",
    "refusal_body",
]

CLOSE_FATAL: Final = 3000  # OpenAI's close code after a fatal error such as a bad key (§3)
CLOSE_BETA_DISABLED: Final = 4000

_REFUSAL_ERRORS: Final = {
    400: ("invalid_request_error", "invalid_request", "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
    ),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


class Endpoint(enum.Enum):
    """The three URL forms the simulated provider serves (protocol.md §1)."""

    OPENAI = OPENAI_PATH
    AZURE_PREVIEW = AZURE_PREVIEW_PATH
    AZURE_V1 = AZURE_V1_PATH


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer with a plain HTTP response instead of 101."""

    status: int
    body: str


@dataclass(frozen=True, slots=True)
class Accept:
    """Upgrade; then either run a session or send ``fatal`` and close with ``close_code``."""

    model: str
    dialect: Dialect
    fatal: ProviderError | None = None
    close_code: int = CLOSE_FATAL


def offered_subprotocols(header_values: Sequence[str]) -> tuple[str, ...]:
    """Subprotocols from every ``Sec-WebSocket-Protocol`` header, in order."""
    return tuple(
        token.strip() for value in header_values for token in value.split(",") if token.strip()
    )


def credential(
    headers: Mapping[str, str], subprotocols: Sequence[str], *, azure: bool
) -> str | None:
    """The API key the client presented; ``None`` if none (``null``, ``undefined``, empty)."""
    key: str | None = None
    authorization = headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        key = token.strip()
    elif azure and headers.get("api-key"):
        key = headers["api-key"].strip()
    else:
        for protocol in subprotocols:
            if protocol.startswith(KEY_SUBPROTOCOL_PREFIX):
                key = protocol.removeprefix(KEY_SUBPROTOCOL_PREFIX)
                break
    return None if key is None or key in NO_KEY else key


def mask_key(key: str) -> str:
    """How OpenAI quotes a key back: never enough of it to be useful."""
    if len(key) < 12:
        return "*" * len(key)
    return f"{key[:3]}{'*' * 4}{key[-4:]}"


def refusal_body(status: int) -> str:
    """An OpenAI-style JSON error body for a refused handshake."""
    kind, code, message = _REFUSAL_ERRORS.get(
        status, ("invalid_request_error" if status < 500 else "server_error", None, "Refused.")
    )
    error = {"message": message, "type": kind, "param": None, "code": code}
    return orjson.dumps({"error": error}).decode()


def decide(
    endpoint: Endpoint,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    subprotocols: Sequence[str],
    options: MockOptions,
) -> Accept | Refuse:
    """How to answer one upgrade request."""
    refusal = _fault_refusal(options)
    if refusal is not None:
        return refusal
    azure = endpoint is not Endpoint.OPENAI
    if endpoint is Endpoint.AZURE_PREVIEW:
        if not query.get("api-version"):
            return Refuse(
                400, _azure_error("BadRequest", "Missing required query parameter: api-version")
            )
        model = query.get("deployment")
        if not model:
            return Refuse(
                404,
                _azure_error(
                    "DeploymentNotFound", "The API deployment for this resource does not exist."
                ),
            )
    else:
        model = query.get("model") or DEFAULT_MODEL

    beta_requested = (
        is_beta_header(headers.get(BETA_HEADER, "")) or BETA_SUBPROTOCOL in subprotocols
    )
    # Azure's preview API versions speak the beta shape without being asked to.
    dialect: Dialect = (
        "beta" if beta_requested or endpoint is Endpoint.AZURE_PREVIEW else options.dialect
    )
    key = credential(headers, subprotocols, azure=azure)
    if options.api_keys is not None and (key is None or key not in options.api_keys):
        return Accept(
            model, dialect, errors.invalid_api_key(None if key is None else mask_key(key))
        )
    if beta_requested and options.ga_only:
        return Accept(model, dialect, errors.beta_disabled(), CLOSE_BETA_DISABLED)
    return Accept(model, dialect)


def decide_http(headers: Mapping[str, str], options: MockOptions) -> Refuse | None:
    """Whether to refuse a plain HTTP request (a WebRTC offer, a call control).

    The ``refuse_status`` fault first, as for an upgrade; then the key. Unlike an
    upgrade, which reports a bad key after the 101 (protocol.md §3), a plain request
    has nowhere else to say it: 401 with OpenAI's ``invalid_api_key`` body.
    """
    refusal = _fault_refusal(options)
    if refusal is not None:
        return refusal
    key = credential(headers, (), azure=False)
    if options.api_keys is not None and (key is None or key not in options.api_keys):
        error = errors.invalid_api_key(None if key is None else mask_key(key))
        return Refuse(401, error.http_body())
    return None


def _fault_refusal(options: MockOptions) -> Refuse | None:
    if options.refuse_status is None:
        return None
    body = options.refuse_body
    return Refuse(
        options.refuse_status, refusal_body(options.refuse_status) if body is None else body
    )


def _azure_error(code: str, message: str) -> str:
    return orjson.dumps({"error": {"code": code, "message": message}}).decode()
