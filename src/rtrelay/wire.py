"""The Realtime API's handshake vocabulary: subprotocols, the beta header, the URL paths.

One copy, shared by everything that speaks or reads the handshake: the relay's edge
and its upstream requests, the simulated provider, the probe and the client library.
A spelling that drifted between them would be a handshake one side no longer
recognises. Values are protocol.md §1 (paths) and §2 (credentials, subprotocols,
the beta shape). Like ``errors.py`` and ``config.py`` this module imports nothing
from rtrelay, so any of them may import it without a cycle.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AZURE_PREVIEW_PATH",
    "AZURE_V1_PATH",
    "BETA_HEADER",
    "BETA_HEADER_VALUE",
    "BETA_SUBPROTOCOL",
    "CALLS_PATH",
    "CALL_CONTROLS",
    "CALL_ID_PARAM",
    "DEFAULT_LIVE_MODEL",
    "DEFAULT_MODEL",
    "DEFAULT_TRANSLATION_MODEL",
    "EVENTS_CHANNEL",
    "KEY_SUBPROTOCOL_PREFIX",
    "LIVE_ATTACH_SUFFIX",
    "LIVE_CONTENT_SUFFIX",
    "LIVE_CONTROLS",
    "LIVE_SESSIONS_PATH",
    "NO_KEY",
    "OPENAI_PATH",
    "ORGANIZATION_SUBPROTOCOL_PREFIX",
    "PROJECT_SUBPROTOCOL_PREFIX",
    "REALTIME_PATH_SUFFIX",
    "REALTIME_SUBPROTOCOL",
    "TRANSLATIONS_PATH",
    "TRANSLATION_SECRETS_PATH",
    "is_beta_header",
]

REALTIME_SUBPROTOCOL: Final = "realtime"
"""The subprotocol a browser offers and the only one a server may echo: the others
carry a key or an account name, and an echo would put them in the response."""
KEY_SUBPROTOCOL_PREFIX: Final = "openai-insecure-api-key."
"""``openai-insecure-api-key.<key>``: how a browser, which cannot set headers, sends a key."""
BETA_SUBPROTOCOL: Final = "openai-beta.realtime-v1"
"""The subprotocol form of ``OpenAI-Beta: realtime=v1``."""
ORGANIZATION_SUBPROTOCOL_PREFIX: Final = "openai-organization."
"""``openai-organization.<id>``: offered by the JS SDK; rtrelay accepts it and ignores it."""
PROJECT_SUBPROTOCOL_PREFIX: Final = "openai-project."
"""``openai-project.<id>``: offered by the JS SDK; rtrelay accepts it and ignores it."""

BETA_HEADER: Final = "OpenAI-Beta"
BETA_HEADER_VALUE: Final = "realtime=v1"
"""``OpenAI-Beta: realtime=v1`` asks for the beta event shape instead of GA."""

NO_KEY: Final = frozenset({"", "null", "undefined"})
"""Keys that mean "no key": what console and SDK clients send when they have none
(JavaScript's ``String(null)`` and ``String(undefined)``), never a credential."""

DEFAULT_MODEL: Final = "gpt-realtime"
"""The model a URL that names none gets (the simulated provider, the probe, the CLI)."""
DEFAULT_LIVE_MODEL: Final = "gpt-live-1"
"""The GPT-Live model ``session.start`` asks for when told none (the probe, the CLI)."""
DEFAULT_TRANSLATION_MODEL: Final = "gpt-realtime-translate"
"""The translation model a translation session or client secret gets when given none."""

OPENAI_PATH: Final = "/v1/realtime"
"""OpenAI: ``GET /v1/realtime?model=M``."""
AZURE_PREVIEW_PATH: Final = "/openai/realtime"
"""Azure preview API versions: ``?api-version=V&deployment=D``; they speak the beta shape."""
AZURE_V1_PATH: Final = "/openai/v1/realtime"
"""Azure GA: ``?model=D``."""
REALTIME_PATH_SUFFIX: Final = "/realtime"
"""What an SDK appends to a base URL (``ws://host/v1`` + ``/realtime``)."""

CALLS_PATH: Final = "/v1/realtime/calls"
"""WebRTC (protocol.md §10): ``POST`` an SDP offer (``application/sdp`` with ``?model=``, or
multipart ``sdp`` + ``session``); 201, the SDP answer, ``Location: CALLS_PATH/{call_id}``."""
CALL_CONTROLS: Final = ("accept", "reject", "refer", "hangup")
"""``POST CALLS_PATH/{call_id}/<control>``."""
CALL_ID_PARAM: Final = "call_id"
"""``GET OPENAI_PATH?call_id=…``: a server's sideband WebSocket attached to a call."""
EVENTS_CHANNEL: Final = "oai-events"
"""The WebRTC data channel that carries a call's events."""

LIVE_SESSIONS_PATH: Final = "/v1/live/sessions"
"""GPT-Live (protocol.md §10): WebSocket ``GET`` with no query, the model in the first
client frame ``session.start``; WebRTC ``POST`` JSON ``{session, transport: {sdp}}``."""
LIVE_ATTACH_SUFFIX: Final = "/attach"
"""``LIVE_SESSIONS_PATH/{session_id}/attach``: a server's sideband WebSocket on a Live session."""
LIVE_CONTROLS: Final = ("accept", "reject", "refer", "hangup", "fork")
"""``POST LIVE_SESSIONS_PATH/{session_id}/<control>`` (``openai/resources/live/sessions.py``)."""
LIVE_CONTENT_SUFFIX: Final = "/content"
"""``GET LIVE_SESSIONS_PATH/{session_id}/content``: the session's recording."""
TRANSLATIONS_PATH: Final = "/v1/realtime/translations"
"""Realtime translation: WebSocket ``GET ?model=M`` (protocol.md §10)."""
TRANSLATION_SECRETS_PATH: Final = "/v1/realtime/translations/client_secrets"
"""``POST``: mints an ``ek_`` client secret scoped to translation."""


def is_beta_header(value: str) -> bool:
    """Whether an ``OpenAI-Beta`` header value asks for the beta shape.

    The header is a comma-separated list (``assistants=v2, realtime=v1``); case is
    ignored, as HTTP tokens are case-insensitive.
    """
    return any(part.strip().lower() == BETA_HEADER_VALUE for part in value.split(","))
