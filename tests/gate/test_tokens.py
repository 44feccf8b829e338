"""Client tokens: signing, verification, request validation and OpenAI-shaped responses."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import pytest
from openai.types.beta.realtime import SessionCreateResponse
from openai.types.realtime import (
    ClientSecretCreateResponse,
    RealtimeSessionCreateResponse,
    RealtimeTranscriptionSessionCreateResponse,
)

from rtrelay.errors import BadRequest
from rtrelay.gate.tokens import (
    BETA_TOKEN_SECONDS,
    DEFAULT_TOKEN_SECONDS,
    MAX_TOKEN_LENGTH,
    InvalidRequest,
    TokenClaims,
    TokenSigner,
    beta_session_response,
    client_secret_response,
    parse_beta_session_request,
    parse_client_secret_request,
)

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_760_000_000.0
SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}
# RFC 7230 tchar: a browser can offer the token as "openai-insecure-api-key.<token>".
SUBPROTOCOL_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET)


@pytest.fixture
def token(signer: TokenSigner) -> str:
    return signer.mint("key_123", model="gpt-realtime", expires_at=int(NOW) + 600)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- signing and verifying --------------------------------------------------------------------


def test_round_trip_on_another_process(token: str) -> None:
    claims = TokenSigner(bytes(SECRET)).verify(token, NOW)
    assert claims == TokenClaims(key_id="key_123", model="gpt-realtime", expires_at=int(NOW) + 600)


def test_round_trip_without_model(signer: TokenSigner) -> None:
    token = signer.mint("key_1", model=None, expires_at=int(NOW) + 60)
    assert signer.verify(token, NOW) == TokenClaims(
        key_id="key_1", model=None, expires_at=int(NOW) + 60
    )


def test_token_shape_fits_a_subprotocol(token: str) -> None:
    assert token.startswith("ek_")
    assert SUBPROTOCOL_TOKEN.fullmatch(token)
    assert "key_123" not in token  # base64, not plain text (signed, not secret)


def test_expired_token_is_refused(signer: TokenSigner, token: str) -> None:
    expires_at = int(NOW) + 600
    assert signer.verify(token, expires_at - 0.001) is not None
    assert signer.verify(token, expires_at) is None
    assert signer.verify(token, expires_at + 3600) is None


def test_token_from_another_secret_is_refused(token: str) -> None:
    assert TokenSigner(b"another secret, also 32 bytes!!!").verify(token, NOW) is None


def test_payload_cannot_be_rewritten(signer: TokenSigner, token: str) -> None:
    payload, signature = token[3:].split(".")
    claims = orjson.loads(unb64(payload))
    claims["k"] = "key_admin"
    claims["e"] += 10**6
    forged = f"ek_{b64(orjson.dumps(claims))}.{signature}"
    assert signer.verify(forged, NOW) is None


def flip(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = alphabet[(alphabet.index(text[index]) + 1) % 64]
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: flip(t, 5), id="payload-char"),
        pytest.param(lambda t: flip(t, len(t) - 5), id="signature-char"),
        pytest.param(lambda t: t[:-1], id="truncated"),
        pytest.param(lambda t: t + "A", id="extended"),
        pytest.param(lambda t: t.replace(".", ""), id="no-dot"),
        pytest.param(lambda t: t + ".x", id="extra-dot"),
        pytest.param(lambda t: "sk_" + t[3:], id="wrong-prefix"),
        pytest.param(lambda t: t[3:], id="no-prefix"),
        pytest.param(lambda t: t.replace("-", "+").replace("_", "/") + "+/", id="std-b64"),
        pytest.param(lambda t: t.split(".")[0] + ".", id="empty-signature"),
        pytest.param(lambda t: "ek_." + t.split(".")[1], id="empty-payload"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "ek_" + "A" * MAX_TOKEN_LENGTH, id="oversized"),
    ],
)
def test_tampered_or_malformed_token_is_refused(
    signer: TokenSigner, token: str, tamper: Any
) -> None:
    assert signer.verify(tamper(token), NOW) is None


def test_non_canonical_signature_encoding_is_refused(signer: TokenSigner, token: str) -> None:
    # 32 bytes take 43 base64 characters: the last one carries 2 unused bits, so flipping its
    # lowest bit decodes to the same signature. Only the canonical form may pass.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = token[-1]
    variant = token[:-1] + alphabet[alphabet.index(last) ^ 1]
    assert unb64(variant.split(".")[1]) == unb64(token.split(".")[1])
    assert signer.verify(variant, NOW) is None


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'{"e": 2000000000}', id="no-key"),
        pytest.param(b'{"k": "key_1"}', id="no-expiry"),
        pytest.param(b'{"k": "key_1", "e": "2000000000"}', id="string-expiry"),
        pytest.param(b'{"k": "key_1", "e": true}', id="bool-expiry"),
        pytest.param(b'{"k": "key_1", "e": 2000000000, "m": 5}', id="numeric-model"),
    ],
)
def test_signed_but_malformed_claims_are_refused(signer: TokenSigner, claims: bytes) -> None:
    payload = b64(claims)
    assert signer.verify(f"ek_{payload}.{signer._signature(payload)}", NOW) is None


def test_secret_must_be_long_enough_and_stays_hidden() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        TokenSigner(b"short")
    assert "0123" not in repr(TokenSigner(SECRET))


def test_oversized_model_is_refused_at_mint_time(signer: TokenSigner) -> None:
    with pytest.raises(InvalidRequest) as caught:
        signer.mint("key_1", model="m" * MAX_TOKEN_LENGTH, expires_at=int(NOW) + 60)
    assert caught.value.param == "session.model"


# --- request bodies ---------------------------------------------------------------------------


def test_ga_request_defaults() -> None:
    request = parse_client_secret_request(None)
    assert request.seconds == DEFAULT_TOKEN_SECONDS == 600
    assert request.session == {"type": "realtime", "model": "gpt-realtime"}
    assert request.model == "gpt-realtime"  # OpenAI's default; the token is bound to it
    assert request.expires_at(NOW + 0.9) == int(NOW) + 600


@pytest.mark.parametrize("seconds", [10, 600, 7200])
def test_ga_request_accepts_lifetimes_in_range(seconds: int) -> None:
    body = {"expires_after": {"anchor": "created_at", "seconds": seconds}, "session": SESSION}
    request = parse_client_secret_request(body)
    assert request.seconds == seconds
    assert request.model == "gpt-realtime"
    assert request.session == SESSION
    assert request.session is not SESSION


def test_ga_request_transcription_session_has_no_model() -> None:
    session = {"type": "transcription", "audio": {"input": {"transcription": {"model": "x"}}}}
    request = parse_client_secret_request({"session": session})
    assert request.model is None
    assert request.session == session


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"expires_after": {"seconds": 9}}, "expires_after.seconds"),
        ({"expires_after": {"seconds": 7201}}, "expires_after.seconds"),
        ({"expires_after": {"seconds": "600"}}, "expires_after.seconds"),
        ({"expires_after": {"seconds": True}}, "expires_after.seconds"),
        ({"expires_after": {"seconds": 60.5}}, "expires_after.seconds"),
        ({"expires_after": {"anchor": "now", "seconds": 60}}, "expires_after.anchor"),
        ({"expires_after": {"seconds": 60, "minutes": 1}}, "expires_after.minutes"),
        ({"expires_after": 600}, "expires_after"),
        ({"expires_in": 600}, "expires_in"),
        ({"session": "realtime"}, "session"),
        ({"session": {"model": "gpt-realtime"}}, "session.type"),
        ({"session": {"type": "chat"}}, "session.type"),
        ({"session": {"type": "realtime", "model": 4}}, "session.model"),
        ({"session": {"type": "realtime", "model": ""}}, "session.model"),
        ([], None),
        ("{}", None),
    ],
)
def test_ga_request_errors_name_the_parameter(body: object, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_client_secret_request(body)
    error = caught.value
    assert error.param == param
    assert isinstance(error, BadRequest)
    assert (error.code, error.http_status, error.close_code) == ("invalid_value", 400, 4400)
    assert error.to_http_body()["error"]["type"] == "invalid_request_error"


def test_beta_request_is_the_session_itself_with_a_fixed_minute() -> None:
    body = {"model": "gpt-4o-realtime-preview", "voice": "verse", "modalities": ["text"]}
    request = parse_beta_session_request(body)
    assert request.seconds == BETA_TOKEN_SECONDS == 60
    assert request.model == "gpt-4o-realtime-preview"
    assert request.session == body
    assert parse_beta_session_request(None).session == {"model": "gpt-realtime"}


@pytest.mark.parametrize(("body", "param"), [([1], None), ({"model": ["a"]}, "model")])
def test_beta_request_errors(body: object, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_beta_session_request(body)
    assert caught.value.param == param


# --- response bodies --------------------------------------------------------------------------


def test_ga_response_matches_openais_shape(token: str) -> None:
    session = {
        **SESSION,
        "audio": {
            "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}},
            "output": {"voice": "marin"},
        },
    }
    body = client_secret_response(token, int(NOW) + 600, session, session_id="sess_test1")
    parsed = ClientSecretCreateResponse.model_validate(body)
    assert isinstance(parsed.session, RealtimeSessionCreateResponse)
    assert (body["value"], body["expires_at"]) == (token, int(NOW) + 600)
    s = body["session"]
    assert list(s)[:3] == ["type", "object", "id"]
    assert (s["type"], s["object"], s["id"]) == ("realtime", "realtime.session", "sess_test1")
    assert (s["model"], s["instructions"]) == ("gpt-realtime", "Be brief.")
    assert s["output_modalities"] == ["audio"]
    assert s["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }
    # a nested object the caller gave replaces the default whole (no server_vad threshold)
    assert s["audio"]["input"]["turn_detection"] == {"type": "semantic_vad", "eagerness": "low"}
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_ga_transcription_response(token: str) -> None:
    session = {"type": "transcription", "audio": {"input": {"transcription": {"model": "t"}}}}
    body = client_secret_response(token, int(NOW) + 60, session)
    parsed = ClientSecretCreateResponse.model_validate(body)
    assert isinstance(parsed.session, RealtimeTranscriptionSessionCreateResponse)
    assert body["session"]["object"] == "realtime.transcription_session"
    assert body["session"]["id"].startswith("sess_")
    assert body["session"]["audio"]["input"]["transcription"] == {"model": "t"}
    assert "model" not in body["session"]


def test_beta_response_matches_openais_shape(token: str) -> None:
    session = {"model": "gpt-4o-realtime-preview", "voice": "verse", "instructions": "Hi."}
    body = beta_session_response(token, int(NOW) + 60, session, session_id="sess_b")
    parsed = SessionCreateResponse.model_validate(body)
    assert parsed.client_secret.value == token
    assert body["client_secret"] == {"value": token, "expires_at": int(NOW) + 60}
    assert (body["id"], body["object"], body["model"]) == (
        "sess_b",
        "realtime.session",
        "gpt-4o-realtime-preview",
    )
    assert (body["voice"], body["instructions"]) == ("verse", "Hi.")
    assert body["modalities"] == ["text", "audio"]
    assert body["input_audio_format"] == body["output_audio_format"] == "pcm16"


def test_responses_share_no_state_between_calls(token: str) -> None:
    first = client_secret_response(token, 1, {"type": "realtime"})
    first["session"]["audio"]["output"]["voice"] = "changed"
    first["session"]["tools"].append({"type": "function"})
    second = client_secret_response(token, 1, {"type": "realtime"})
    assert second["session"]["audio"]["output"]["voice"] == "alloy"
    assert second["session"]["tools"] == []
    assert first["session"]["id"] != second["session"]["id"]


def test_mint_flow_end_to_end(signer: TokenSigner) -> None:
    """Body → validated request → token → response → the token verifies to the same request."""
    request = parse_client_secret_request(
        {"expires_after": {"seconds": 120}, "session": {**SESSION, "voice": None}}
    )
    expires_at = request.expires_at(NOW)
    token = signer.mint("key_9", model=request.model, expires_at=expires_at)
    body = client_secret_response(token, expires_at, request.session)
    claims = signer.verify(body["value"], NOW + 119)
    assert claims is not None
    assert (claims.key_id, claims.model) == ("key_9", "gpt-realtime")
    assert signer.verify(body["value"], NOW + 120) is None
