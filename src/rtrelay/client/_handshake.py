"""What the opening handshake sends: URL, headers and subprotocols, decided without I/O."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Final, Literal

from yarl import URL

from rtrelay import __version__
from rtrelay.wire import (
    BETA_HEADER,
    BETA_HEADER_VALUE,
    BETA_SUBPROTOCOL,
    KEY_SUBPROTOCOL_PREFIX,
    REALTIME_PATH_SUFFIX,
    REALTIME_SUBPROTOCOL,
)

__all__ = ["Auth", "Handshake", "build_handshake", "build_url"]

Auth = Literal["header", "subprotocol"]

USER_AGENT: Final = f"rtrelay-client/{__version__}"

# Query keys that already say which session to open; a full URL carrying one is used as is
# (protocol.md §1: model=, call_id=, intent=; Azure preview: deployment=).
_SESSION_QUERY_KEYS: Final = ("model", "deployment", "call_id", "intent")

# RFC 6455 §4.1: a subprotocol is an RFC 2616 token; a header value must not break the line.
_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEADER_SAFE: Final = re.compile(r"^[\x21-\x7e]+$")


@dataclasses.dataclass(frozen=True, slots=True)
class Handshake:
    """The request of one connection attempt. ``repr`` never shows headers or protocols."""

    url: str
    headers: Mapping[str, str] = dataclasses.field(repr=False)
    protocols: tuple[str, ...] = dataclasses.field(repr=False)


def build_url(url: str, model: str | None = None) -> str:
    """The WebSocket URL to dial, built the way the ``openai`` SDK builds it.

    A base URL (``ws://host:8080/v1``) gets ``/realtime`` and ``?model=M`` appended.
    A full URL, whose path already ends in ``/realtime``, is used as is; ``model`` is
    added only when its query names no session (``model``, ``deployment``, ``call_id``,
    ``intent``). ``http``/``https`` become ``ws``/``wss``.

    Raises:
        ValueError: the URL is not absolute or its scheme is not ws, wss, http or https.
    """
    parsed = URL(url)
    scheme = {"http": "ws", "https": "wss"}.get(parsed.scheme, parsed.scheme)
    if scheme not in ("ws", "wss") or not parsed.host:
        raise ValueError(f"expected an absolute ws(s):// or http(s):// URL, got {url!r}")
    parsed = parsed.with_scheme(scheme)
    if parsed.path.rstrip("/").endswith(REALTIME_PATH_SUFFIX):
        if model is not None and not any(key in parsed.query for key in _SESSION_QUERY_KEYS):
            parsed = parsed.update_query(model=model)
        return str(parsed)
    path = parsed.path.rstrip("/") + REALTIME_PATH_SUFFIX
    parsed = parsed.with_path(path, keep_query=True)
    if model is not None:
        parsed = parsed.update_query(model=model)
    return str(parsed)


def build_handshake(
    url: str,
    *,
    api_key: str | None,
    model: str | None,
    auth: Auth,
    beta: bool,
    azure: bool,
    headers: Mapping[str, str] | None,
) -> Handshake:
    """Decide the request: where to go, which credential form, which API shape.

    ``auth="header"`` sends ``Authorization: Bearer <key>`` (``api-key: <key>`` when
    ``azure``), the server form. ``auth="subprotocol"`` offers ``realtime`` and
    ``openai-insecure-api-key.<key>``, the form browsers must use (DESIGN.md,
    "Credentials and subprotocols"). ``beta`` asks for the beta shape with the header
    or, in the subprotocol form, with ``openai-beta.realtime-v1``.

    Raises:
        ValueError: bad URL, unknown ``auth``, or a key that cannot travel in that form
            (the key itself is never part of the message).
    """
    if auth not in ("header", "subprotocol"):
        raise ValueError(f"auth must be 'header' or 'subprotocol', got {auth!r}")
    target = build_url(url, model)
    out: dict[str, str] = {"User-Agent": USER_AGENT}
    protocols: list[str] = []
    if auth == "header":
        if api_key is not None:
            if not _HEADER_SAFE.match(api_key):
                raise ValueError("api_key contains characters not allowed in an HTTP header")
            if azure:
                out["api-key"] = api_key
            else:
                out["Authorization"] = f"Bearer {api_key}"
        if beta:
            out[BETA_HEADER] = BETA_HEADER_VALUE
    else:
        protocols.append(REALTIME_SUBPROTOCOL)
        if api_key is not None:
            if not _TOKEN.match(api_key):
                raise ValueError("api_key contains characters not allowed in a subprotocol")
            protocols.append(KEY_SUBPROTOCOL_PREFIX + api_key)
        if beta:
            protocols.append(BETA_SUBPROTOCOL)
    if headers:
        out.update(headers)
    return Handshake(url=target, headers=out, protocols=tuple(protocols))
