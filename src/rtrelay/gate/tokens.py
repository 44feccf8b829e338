"""Short-lived client tokens (``ek_…``): minted for browsers, verifiable by any relay process.

A browser must not hold a long-lived ``rk_`` key, so a server exchanges its key for a token
that expires within minutes (protocol.md §2, "Ephemeral keys"), in OpenAI's GA shape
(``POST /v1/realtime/client_secrets``) or beta shape (``POST /v1/realtime/sessions``). The token
is stateless: ``ek_<payload>.<signature>``, the payload a compact JSON object in base64url and
the signature HMAC-SHA256 over it, so every relay sharing the secret can verify it with no
store lookup. The payload is signed, not encrypted: whoever holds the token can read its key
id, model and session configuration.

This module does no I/O: it signs, verifies, validates request bodies and builds response
bodies; the HTTP endpoint and the admission pipeline call it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from rtrelay.errors import InvalidRequest
from rtrelay.wire import DEFAULT_MODEL, DEFAULT_TRANSLATION_MODEL

__all__ = [
    "BETA_TOKEN_SECONDS",
    "DEFAULT_TOKEN_SECONDS",
    "DEFAULT_TRANSLATION_MODEL",
    "MAX_TOKEN_LENGTH",
    "MAX_TOKEN_SECONDS",
    "MIN_SECRET_BYTES",
    "MIN_TOKEN_SECONDS",
    "TOKEN_PREFIX",
    "ClientSecretRequest",
    "InvalidRequest",
    "TokenClaims",
    "TokenSigner",
    "beta_session_response",
    "client_secret_response",
    "parse_beta_session_request",
    "parse_client_secret_request",
    "parse_translation_secret_request",
    "translation_secret_response",
]

TOKEN_PREFIX: Final = "ek_"
MIN_TOKEN_SECONDS: Final = 10
MAX_TOKEN_SECONDS: Final = 7200
DEFAULT_TOKEN_SECONDS: Final = 600
"""GA ``expires_after.seconds``: 10..7200, default 600 (protocol.md §2)."""
BETA_TOKEN_SECONDS: Final = 60
"""Beta: "all tokens expire after one minute" (protocol.md §2)."""
MIN_SECRET_BYTES: Final = 16
MAX_TOKEN_LENGTH: Final = 4096
"""Browsers send the token inside ``Sec-WebSocket-Protocol``; servers cap a header near 8 KiB."""

_SIGNING_CONTEXT: Final = b"rtrelay.ek.v1."
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_SESSION_TYPES: Final = ("realtime", "transcription")


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenClaims:
    """What a verified token grants."""

    key_id: str
    """The rtrelay key the token was minted for (its id, never the key itself)."""
    model: str | None
    """The model the token is bound to, or ``None`` for any model the key may use."""
    expires_at: int
    """Unix seconds; the token admits no new session from then on."""


class TokenSigner:
    """Mints and verifies ``ek_`` tokens with one HMAC secret.

    Args:
        secret: at least 16 random bytes (32 recommended), the same on every relay.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the token signing secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "TokenSigner(secret=<hidden>)"

    def mint(self, key_id: str, *, model: str | None, expires_at: int) -> str:
        """A token for ``key_id`` that verifies until ``expires_at`` (unix seconds).

        Only the model of the mint request's session configuration is bound: the rest is
        not applied at session start, so it is not carried (the client sends it with
        ``session.update``), which also keeps the token short enough for a subprotocol.

        Raises:
            InvalidRequest: the model name makes the token too long to send.
        """
        claims: dict[str, Any] = {"k": key_id, "e": expires_at}
        if model is not None:
            claims["m"] = model
        payload = _b64encode(orjson.dumps(claims))
        token = f"{TOKEN_PREFIX}{payload}.{self._signature(payload)}"
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidRequest(
                "The model name is too long for a client secret.", param="session.model"
            )
        return token

    def verify(self, token: str, now: float) -> TokenClaims | None:
        """The token's claims, or ``None`` if it is malformed, forged, or expired at ``now``."""
        if len(token) > MAX_TOKEN_LENGTH or not token.startswith(TOKEN_PREFIX):
            return None
        payload, dot, signature = token[len(TOKEN_PREFIX) :].partition(".")
        if not dot or not _B64URL.fullmatch(payload) or not _B64URL.fullmatch(signature):
            return None
        # Comparing the canonical encodings also rejects re-encoded variants of a signature.
        if not hmac.compare_digest(self._signature(payload), signature):
            return None
        claims = _decode_claims(payload)
        if claims is None or now >= claims.expires_at:
            return None
        return claims

    def _signature(self, payload: str) -> str:
        mac = hmac.new(self._secret, _SIGNING_CONTEXT + payload.encode("ascii"), hashlib.sha256)
        return _b64encode(mac.digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode_claims(payload: str) -> TokenClaims | None:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    key_id, model, expires_at = raw.get("k"), raw.get("m"), raw.get("e")
    if (
        not isinstance(key_id, str)
        or not (model is None or isinstance(model, str))
        or not isinstance(expires_at, int)
        or isinstance(expires_at, bool)
    ):
        return None
    return TokenClaims(key_id=key_id, model=model, expires_at=expires_at)


# --- request bodies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSecretRequest:
    """A validated mint request, from either endpoint."""

    seconds: int
    """Token lifetime from its creation."""
    model: str | None
    """``session.model`` (GA) or ``model`` (beta), if given."""
    session: dict[str, Any]
    """The session configuration as sent; GA ones always carry ``type``."""

    def expires_at(self, now: float) -> int:
        """Unix seconds at which a token created at ``now`` expires."""
        return int(now) + self.seconds


def parse_client_secret_request(body: object) -> ClientSecretRequest:
    """Validate a GA ``POST /v1/realtime/client_secrets`` body (``None`` = empty body).

    Shape: ``{expires_after?: {anchor?: "created_at", seconds?: 10..7200}, session?: {type,
    model?, …}}``; the session defaults to ``{"type": "realtime"}``. A realtime session's
    model defaults to ``gpt-realtime``, as OpenAI's does: the token is bound to it (a
    transcription session names its model inside ``audio.input.transcription``).

    Raises:
        InvalidRequest: a field is unknown, of the wrong type or out of range.
    """
    fields = _object(body, None)
    _no_unknown(fields, ("expires_after", "session"), "")
    seconds = DEFAULT_TOKEN_SECONDS
    expires_after = fields.get("expires_after")
    if expires_after is not None:
        expires_after = _object(expires_after, "expires_after")
        _no_unknown(expires_after, ("anchor", "seconds"), "expires_after.")
        anchor = expires_after.get("anchor", "created_at")
        if anchor != "created_at":
            raise InvalidRequest(
                f"Invalid value for 'expires_after.anchor': {anchor!r}. "
                "Supported values are: 'created_at'.",
                param="expires_after.anchor",
            )
        seconds = _seconds(expires_after.get("seconds", DEFAULT_TOKEN_SECONDS))
    raw_session = fields.get("session")
    session = {"type": "realtime"} if raw_session is None else dict(_object(raw_session, "session"))
    kind = session.get("type")
    if kind is None:
        raise InvalidRequest("Missing required parameter: 'session.type'.", param="session.type")
    if kind not in _SESSION_TYPES:
        raise InvalidRequest(
            f"Invalid value for 'session.type': {kind!r}. "
            "Supported values are: 'realtime' and 'transcription'.",
            param="session.type",
        )
    model = _model(session, "session.model")
    if model is None and kind == "realtime":
        model = session["model"] = DEFAULT_MODEL
    return ClientSecretRequest(seconds=seconds, model=model, session=session)


def parse_translation_secret_request(body: object) -> ClientSecretRequest:
    """Validate ``POST /v1/realtime/translations/client_secrets`` (``openai`` SDK:
    ``realtime.translations.client_secrets.create``): ``{session: {model?, audio?},
    expires_after?}``. The model defaults to ``gpt-realtime-translate`` and the token is
    bound to it, so it opens translation sessions only (a translation model is refused on
    every other route).

    Raises:
        InvalidRequest: a field is unknown, of the wrong type or out of range.
    """
    fields = _object(body, None)
    _no_unknown(fields, ("expires_after", "session"), "")
    seconds = DEFAULT_TOKEN_SECONDS
    if (expires_after := fields.get("expires_after")) is not None:
        expires_after = _object(expires_after, "expires_after")
        _no_unknown(expires_after, ("anchor", "seconds"), "expires_after.")
        seconds = _seconds(expires_after.get("seconds", DEFAULT_TOKEN_SECONDS))
    raw_session = fields.get("session")
    session = {} if raw_session is None else dict(_object(raw_session, "session"))
    _no_unknown(session, ("model", "audio", "type"), "session.")
    model = _model(session, "session.model") or DEFAULT_TRANSLATION_MODEL
    session["model"] = model
    return ClientSecretRequest(seconds=seconds, model=model, session=session)


def translation_secret_response(
    token: str, expires_at: int, session: Mapping[str, Any]
) -> dict[str, Any]:
    """``{value, expires_at, session}`` with the effective translation session
    (``RealtimeTranslationClientSecretCreateResponse``)."""
    effective = {
        "id": _session_id(),
        "type": "translation",
        "model": session["model"],
        "audio": session.get("audio") or {"input": {}, "output": {}},
        "expires_at": expires_at,
    }
    return {"value": token, "expires_at": expires_at, "session": effective}


def parse_beta_session_request(body: object) -> ClientSecretRequest:
    """Validate a beta ``POST /v1/realtime/sessions`` body: the session object itself.

    The lifetime is fixed at 60 s, as OpenAI's beta endpoint had it; the model defaults
    to ``gpt-realtime`` (the token is bound to it).

    Raises:
        InvalidRequest: the body is not an object, or ``model`` is not a string.
    """
    session = dict(_object(body, None))
    model = _model(session, "model")
    if model is None:
        model = session["model"] = DEFAULT_MODEL
    return ClientSecretRequest(seconds=BETA_TOKEN_SECONDS, model=model, session=session)


def _object(value: object, param: str | None) -> Mapping[str, Any]:
    if value is None and param is None:
        return {}
    if not isinstance(value, Mapping):
        where = "The request body" if param is None else f"'{param}'"
        raise InvalidRequest(f"{where} must be a JSON object.", param=param)
    return value


def _no_unknown(fields: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
    for name in fields:
        if name not in known:
            raise InvalidRequest(f"Unknown parameter: '{prefix}{name}'.", param=f"{prefix}{name}")


def _seconds(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(
            f"Invalid type for 'expires_after.seconds': expected an integer, got {value!r}.",
            param="expires_after.seconds",
        )
    if not MIN_TOKEN_SECONDS <= value <= MAX_TOKEN_SECONDS:
        raise InvalidRequest(
            f"Invalid 'expires_after.seconds': expected a value between {MIN_TOKEN_SECONDS} "
            f"and {MAX_TOKEN_SECONDS}, but got {value} instead.",
            param="expires_after.seconds",
        )
    return value


def _model(session: Mapping[str, Any], param: str) -> str | None:
    model = session.get("model")
    if model is None:
        return None
    if not isinstance(model, str) or not model:
        raise InvalidRequest(f"Invalid value for '{param}': expected a model name.", param=param)
    return model


# --- response bodies --------------------------------------------------------------------------

# The effective-session defaults OpenAI's own responses show (protocol.md §2; the openapi
# examples of RealtimeCreateClientSecretResponse and the beta RealtimeSessionCreateResponse).
# The relay cannot know the provider's default instructions, so it reports none.
_PCM: Final = {"type": "audio/pcm", "rate": 24000}
_GA_TURN_DETECTION: Final = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
_GA_AUDIO_INPUT: Final = {
    "format": _PCM,
    "transcription": None,
    "noise_reduction": None,
    "turn_detection": _GA_TURN_DETECTION,
}
_GA_REALTIME_DEFAULTS: Final[dict[str, Any]] = {
    "type": "realtime",
    "model": None,
    "output_modalities": ["audio"],
    "instructions": None,
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "expires_at": 0,
    "audio": {"input": _GA_AUDIO_INPUT, "output": {"format": _PCM, "voice": "alloy", "speed": 1.0}},
    "include": None,
}
_GA_TRANSCRIPTION_DEFAULTS: Final[dict[str, Any]] = {
    "type": "transcription",
    "expires_at": 0,
    "audio": {"input": dict(_GA_AUDIO_INPUT)},
    "include": None,
}
_BETA_DEFAULTS: Final[dict[str, Any]] = {
    "model": None,
    "modalities": ["text", "audio"],
    "instructions": None,
    "voice": "alloy",
    "input_audio_format": "pcm16",
    "output_audio_format": "pcm16",
    "input_audio_transcription": None,
    "turn_detection": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
    },
    "tools": [],
    "tool_choice": "auto",
    "temperature": 0.8,
    "max_response_output_tokens": "inf",
    "speed": 1.0,
    "tracing": None,
}


def client_secret_response(
    token: str,
    expires_at: int,
    session: Mapping[str, Any],
    *,
    session_id: str | None = None,
) -> dict[str, Any]:
    """The GA ``client_secrets`` response: ``{value, expires_at, session}``.

    ``session`` (as validated by :func:`parse_client_secret_request`) is laid over OpenAI's
    defaults, merging into ``audio.input`` and ``audio.output`` field by field.
    """
    transcription = session.get("type") == "transcription"
    defaults = _GA_TRANSCRIPTION_DEFAULTS if transcription else _GA_REALTIME_DEFAULTS
    effective = _overlay(defaults, session, depth=2)
    effective["object"] = "realtime.transcription_session" if transcription else "realtime.session"
    effective["id"] = session_id or _session_id()
    return {"value": token, "expires_at": expires_at, "session": _ordered(effective)}


def beta_session_response(
    token: str,
    expires_at: int,
    session: Mapping[str, Any],
    *,
    session_id: str | None = None,
) -> dict[str, Any]:
    """The beta ``sessions`` response: the session object plus ``client_secret``."""
    effective = _overlay(_BETA_DEFAULTS, session, depth=0)
    effective["object"] = "realtime.session"
    effective["id"] = session_id or _session_id()
    body = _ordered(effective)
    body["client_secret"] = {"value": token, "expires_at": expires_at}
    return body


def _session_id() -> str:
    return "sess_" + secrets.token_urlsafe(16).replace("-", "").replace("_", "")[:21]


def _overlay(base: Mapping[str, Any], over: Mapping[str, Any], *, depth: int) -> dict[str, Any]:
    """``over`` laid on a copy of ``base``, merging nested objects ``depth`` levels deep.

    Deeper objects (a ``turn_detection``, a ``format``) are replaced whole: merging a
    ``semantic_vad`` over ``server_vad`` defaults would invent fields it does not have.
    """
    out = copy.deepcopy(dict(base))
    for name, value in over.items():
        current = out.get(name)
        if depth > 0 and isinstance(current, dict) and isinstance(value, Mapping):
            out[name] = _overlay(current, value, depth=depth - 1)
        else:
            out[name] = copy.deepcopy(value)
    return out


def _ordered(session: dict[str, Any]) -> dict[str, Any]:
    """``type``, ``object``, ``id`` first, as OpenAI prints them."""
    head = {k: session.pop(k) for k in ("type", "object", "id") if k in session}
    return head | session
