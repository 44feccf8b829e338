"""Handshake decisions: endpoint, model, dialect, credentials, refusals."""

from __future__ import annotations

import orjson
import pytest

from rtrelay.mock import MockOptions
from rtrelay.mock._handshake import (
    Accept,
    Endpoint,
    Refuse,
    credential,
    decide,
    mask_key,
    offered_subprotocols,
)


def test_subprotocols_are_split_across_headers() -> None:
    assert offered_subprotocols(
        ["realtime, openai-insecure-api-key.k", "openai-beta.realtime-v1"]
    ) == (
        "realtime",
        "openai-insecure-api-key.k",
        "openai-beta.realtime-v1",
    )


@pytest.mark.parametrize(
    ("headers", "protocols", "azure", "expected"),
    [
        ({"Authorization": "Bearer sk-1"}, (), False, "sk-1"),
        ({}, ("realtime", "openai-insecure-api-key.sk-2"), False, "sk-2"),
        ({}, ("realtime", "openai-insecure-api-key.null"), False, None),
        ({}, ("realtime", "openai-insecure-api-key.undefined"), False, None),
        ({"api-key": "az-1"}, (), True, "az-1"),
        ({"api-key": "az-1"}, (), False, None),
        ({"Authorization": "Basic abc"}, (), False, None),
        ({}, (), False, None),
    ],
)
def test_credential_sources(
    headers: dict[str, str], protocols: tuple[str, ...], azure: bool, expected: str | None
) -> None:
    assert credential(headers, protocols, azure=azure) == expected


def test_masked_keys_never_reveal_more_than_seven_characters() -> None:
    masked = mask_key("sk-proj-abcdefghijklmnopqrstuvwxyz")
    assert masked == "sk-****wxyz"
    assert mask_key("short") == "*****"


def test_default_dialect_is_ga_and_beta_is_asked_by_header_or_subprotocol() -> None:
    options = MockOptions()
    assert decide(Endpoint.OPENAI, {"model": "m"}, {}, (), options) == Accept("m", "ga")
    by_header = decide(Endpoint.OPENAI, {}, {"OpenAI-Beta": "realtime=v1"}, (), options)
    assert by_header == Accept("gpt-realtime", "beta")
    in_a_list = {"OpenAI-Beta": "assistants=v2, Realtime=V1"}
    assert decide(Endpoint.OPENAI, {}, in_a_list, (), options) == Accept("gpt-realtime", "beta")
    by_protocol = decide(Endpoint.OPENAI, {}, {}, ("openai-beta.realtime-v1",), options)
    assert isinstance(by_protocol, Accept) and by_protocol.dialect == "beta"
    beta_default = decide(Endpoint.OPENAI, {}, {}, (), MockOptions(dialect="beta"))
    assert isinstance(beta_default, Accept) and beta_default.dialect == "beta"


def test_ga_only_rejects_beta_after_the_upgrade_with_4000() -> None:
    decision = decide(
        Endpoint.OPENAI, {}, {"OpenAI-Beta": "realtime=v1"}, (), MockOptions(ga_only=True)
    )
    assert isinstance(decision, Accept)
    assert decision.fatal is not None
    assert decision.fatal.code == "beta_api_shape_disabled"
    assert decision.close_code == 4000
    assert decision.fatal.close_reason == "invalid_request_error.beta_api_shape_disabled"


def test_unknown_key_is_rejected_after_the_upgrade_with_3000_and_masked() -> None:
    options = MockOptions(api_keys=frozenset({"sk-good"}))
    decision = decide(
        Endpoint.OPENAI, {}, {"Authorization": "Bearer sk-bad-0123456789"}, (), options
    )
    assert isinstance(decision, Accept) and decision.fatal is not None
    assert decision.close_code == 3000
    assert decision.fatal.close_reason == "invalid_request_error.invalid_api_key"
    assert "sk-bad-0123456789" not in decision.fatal.message
    assert "sk-****6789" in decision.fatal.message
    ok = decide(Endpoint.OPENAI, {}, {"Authorization": "Bearer sk-good"}, (), options)
    assert isinstance(ok, Accept) and ok.fatal is None


def test_azure_paths_take_the_deployment_and_the_api_key_header() -> None:
    options = MockOptions(api_keys=frozenset({"az"}))
    preview = decide(
        Endpoint.AZURE_PREVIEW,
        {"api-version": "2025-04-01-preview", "deployment": "dep"},
        {"api-key": "az"},
        (),
        options,
    )
    assert preview == Accept("dep", "beta")
    ga = decide(Endpoint.AZURE_V1, {"model": "dep"}, {"api-key": "az"}, (), options)
    assert ga == Accept("dep", "ga")
    missing = decide(Endpoint.AZURE_PREVIEW, {"deployment": "dep"}, {}, (), options)
    assert isinstance(missing, Refuse) and missing.status == 400


def test_refusal_has_an_openai_style_body_unless_one_is_given() -> None:
    refused = decide(Endpoint.OPENAI, {}, {}, (), MockOptions(refuse_status=429))
    assert isinstance(refused, Refuse) and refused.status == 429
    assert orjson.loads(refused.body)["error"]["code"] == "rate_limit_exceeded"
    custom = decide(Endpoint.OPENAI, {}, {}, (), MockOptions(refuse_status=500, refuse_body="x"))
    assert custom == Refuse(500, "x")
