"""What to connect to and how: the URL, headers and subprotocols a real client would send."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import orjson
from yarl import URL

from rtrelay.probe._redact import mask_key, redact
from rtrelay.wire import (
    BETA_HEADER,
    BETA_HEADER_VALUE,
    BETA_SUBPROTOCOL,
    DEFAULT_LIVE_MODEL,
    DEFAULT_MODEL,
    DEFAULT_TRANSLATION_MODEL,
    KEY_SUBPROTOCOL_PREFIX,
    LIVE_SESSIONS_PATH,
    REALTIME_PATH_SUFFIX,
    REALTIME_SUBPROTOCOL,
    TRANSLATIONS_PATH,
)

_CALLS_SUFFIX: Final = "/calls"
_API_PREFIX: Final = "/v1"
_LIVE_SUFFIX: Final = LIVE_SESSIONS_PATH.removeprefix(_API_PREFIX)
_TRANSLATIONS_SUFFIX: Final = TRANSLATIONS_PATH.removeprefix(_API_PREFIX)

__all__ = [
    "HandshakeRequest",
    "OfferRequest",
    "ProbeUsageError",
    "Target",
    "plan",
    "plan_webrtc",
]

_USER_AGENT: Final = "rtrelay-probe"
_MODEL_PARAMS: Final = ("model", "deployment", "call_id", "intent")
"""Query parameters that already say which session to open (protocol.md §1)."""

Mode = Literal["browser", "server", "webrtc"]
Dialogue = Literal["realtime", "live", "translation"]
"""Which protocol the URL speaks (``…/live/sessions``: GPT-Live; ``…/realtime/translations``:
translation; anything else: the Realtime API)."""


class ProbeUsageError(ValueError):
    """The URL or options cannot describe a Realtime connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The connection as the report shows it: nothing in here carries the key in clear."""

    url: str
    scheme: Literal["ws", "wss", "http", "https"]
    host: str
    port: int
    mode: Mode
    protocols: tuple[str, ...]
    origin: str | None
    beta: bool
    key: str | None
    """The key, masked (``rk_ab…xy``)."""
    dialogue: Dialogue = "realtime"
    model: str | None = None
    """GPT-Live: the model ``session.start`` asks for (the URL names none)."""

    @property
    def secure(self) -> bool:
        return self.scheme in ("wss", "https")

    @property
    def established(self) -> str:
        """The server event that means a session is running."""
        return "session.started" if self.dialogue == "live" else "session.created"


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeRequest:
    """What goes on the wire, secret included; never printed or serialised."""

    url: str
    protocols: tuple[str, ...]
    headers: Mapping[str, str]
    origin: str | None
    secret: str | None = field(repr=False)
    opening: str | None = None
    """A client event sent right after the 101 (GPT-Live's ``session.start``)."""
    closing: str | None = None
    """A client event that ends the session cleanly (GPT-Live's ``session.close``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRequest:
    """The POST of an SDP offer (raw ``application/sdp``, ``?model=``), secret included."""

    url: str
    headers: Mapping[str, str]
    secret: str | None = field(repr=False)


def plan(
    url: str,
    *,
    key: str | None = None,
    model: str | None = None,
    origin: str | None = None,
    subprotocol_auth: bool = False,
    beta: bool = False,
) -> tuple[Target, HandshakeRequest]:
    """Build the handshake a browser (``subprotocol_auth``) or a server SDK would send.

    ``url`` may be a base URL as SDKs take it (``ws://host:port/v1``): ``/realtime``
    is appended and ``?model=`` added when the URL names no session, so the probe
    and an SDK aimed at the same base URL dial the same thing. A translation URL
    (``…/v1/realtime/translations``) gets ``?model=`` the same way. A GPT-Live URL
    (``…/v1/live/sessions``) is dialled as it is: its model goes in ``session.start``
    (``model``, else the URL's ``?model=`` hint, else ``gpt-live-1``), and the probe
    ends the session with ``session.close``.

    Raises:
        ProbeUsageError: the URL is not an http(s)/ws(s) URL with a host.
    """
    parsed, dialogue = _normalise(url, model)
    live_model = None
    opening = closing = None
    if dialogue == "live":
        live_model = model or parsed.query.get("model") or DEFAULT_LIVE_MODEL
        start = {"type": "session.start", "session": {"model": live_model}}
        opening = orjson.dumps(start).decode()
        closing = orjson.dumps({"type": "session.close"}).decode()
    if key is not None and not key:
        key = None
    if subprotocol_auth:
        protocols: tuple[str, ...] = (REALTIME_SUBPROTOCOL,)
        if key is not None:
            protocols += (KEY_SUBPROTOCOL_PREFIX + key,)
        if beta:
            protocols += (BETA_SUBPROTOCOL,)
        headers: dict[str, str] = {}
    else:
        protocols = ()
        headers = {"User-Agent": _USER_AGENT}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if beta:
            headers[BETA_HEADER] = BETA_HEADER_VALUE
    assert parsed.host is not None
    assert parsed.port is not None
    target = Target(
        url=redact(str(parsed), key),
        scheme="wss" if parsed.scheme == "wss" else "ws",
        host=parsed.host,
        port=parsed.port,
        mode="browser" if subprotocol_auth else "server",
        protocols=tuple(redact(p, key) for p in protocols),
        origin=origin,
        beta=beta,
        key=mask_key(key),
        dialogue=dialogue,
        model=live_model,
    )
    request = HandshakeRequest(
        url=str(parsed),
        protocols=protocols,
        headers=headers,
        origin=origin,
        secret=key,
        opening=opening,
        closing=closing,
    )
    return target, request


def _normalise(url: str, model: str | None) -> tuple[URL, Dialogue]:
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise ProbeUsageError(f"not a URL: {url!r}") from exc
    scheme = {"http": "ws", "https": "wss"}.get(parsed.scheme, parsed.scheme)
    if scheme not in ("ws", "wss"):
        raise ProbeUsageError(
            f"the URL must start with ws://, wss://, http:// or https://: {url!r}"
        )
    if not parsed.host:
        raise ProbeUsageError(f"the URL has no host: {url!r}")
    parsed = parsed.with_scheme(scheme)
    path = parsed.path.rstrip("/")
    if path.endswith(_LIVE_SUFFIX):
        return parsed.with_path(path, keep_query=True), "live"
    dialogue: Dialogue = "realtime"
    if path.endswith(_TRANSLATIONS_SUFFIX):
        dialogue = "translation"
        parsed = parsed.with_path(path, keep_query=True)
    else:
        path = path.removesuffix(_CALLS_SUFFIX)
        if not path.endswith(REALTIME_PATH_SUFFIX):
            parsed = parsed.with_path(path + REALTIME_PATH_SUFFIX, keep_query=True)
    query = dict(parsed.query)
    if model is not None:
        query["deployment" if "deployment" in query else "model"] = model
    elif not any(name in query for name in _MODEL_PARAMS):
        query["model"] = DEFAULT_TRANSLATION_MODEL if dialogue == "translation" else DEFAULT_MODEL
    return parsed.with_query(query), dialogue


def plan_webrtc(
    url: str, *, key: str | None = None, model: str | None = None, origin: str | None = None
) -> tuple[Target, OfferRequest]:
    """The offer POST a browser page following OpenAI's WebRTC guide would send.

    ``url`` may be a base URL (``http://host:port/v1``), the Realtime URL, or the calls
    URL itself; ``/realtime/calls`` is completed and ``?model=`` added as for ``plan``.

    Raises:
        ProbeUsageError: the URL is not an http(s)/ws(s) URL with a host.
    """
    parsed, dialogue = _normalise(url, model)
    if dialogue != "realtime":
        raise ProbeUsageError(
            "--webrtc probes Realtime calls (/v1/realtime/calls); "
            f"this URL is a {dialogue} session's"
        )
    parsed = parsed.with_scheme("https" if parsed.scheme == "wss" else "http")
    path = parsed.path.rstrip("/")
    if not path.endswith(_CALLS_SUFFIX):
        parsed = parsed.with_path(path + _CALLS_SUFFIX, keep_query=True)
    key = key or None
    headers = {"User-Agent": _USER_AGENT, "Content-Type": "application/sdp"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if origin is not None:
        headers["Origin"] = origin
    assert parsed.host is not None
    assert parsed.port is not None
    target = Target(
        url=redact(str(parsed), key),
        scheme="https" if parsed.scheme == "https" else "http",
        host=parsed.host,
        port=parsed.port,
        mode="webrtc",
        protocols=(),
        origin=origin,
        beta=False,
        key=mask_key(key),
    )
    return target, OfferRequest(url=str(parsed), headers=headers, secret=key)
