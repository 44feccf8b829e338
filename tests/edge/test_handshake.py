"""Reading credentials, model, shape and subprotocols from an upgrade (protocol.md §2)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from rtrelay.edge.handshake import ClientHello, parse_hello
from rtrelay.errors import MissingModel


def hello(
    headers: dict[str, str], query: dict[str, str] | None = None, style: str = "auto"
) -> ClientHello:
    return parse_hello(
        CIMultiDict(headers),
        {"model": "m"} if query is None else query,
        request_id="req_1",
        handshake_errors=style,  # type: ignore[arg-type]
    )


def test_bearer_header() -> None:
    h = hello({"Authorization": "Bearer rk_abc"})
    assert h.credential == "rk_abc"
    assert h.error_style == "http"


def test_azure_api_key_header_and_deployment() -> None:
    h = hello({"api-key": "rk_az"}, {"deployment": "gpt-realtime", "api-version": "2025-04-01"})
    assert (h.credential, h.model) == ("rk_az", "gpt-realtime")


def test_browser_subprotocols() -> None:
    h = hello(
        {
            "Sec-WebSocket-Protocol": "realtime, openai-insecure-api-key.rk_b, "
            "openai-beta.realtime-v1, openai-organization.org",
            "Origin": "http://localhost",
        }
    )
    assert h.credential == "rk_b"
    assert h.beta
    assert h.echo_protocol == "realtime"
    assert h.error_style == "event"


@pytest.mark.parametrize("key", ["null", "undefined", ""])
def test_console_null_key_counts_as_none(key: str) -> None:
    h = hello({"Sec-WebSocket-Protocol": f"realtime, openai-insecure-api-key.{key}"})
    assert h.credential is None


def test_key_protocol_is_never_echoed() -> None:
    h = hello({"Sec-WebSocket-Protocol": "openai-insecure-api-key.rk_x"})
    assert h.echo_protocol is None
    assert h.error_style == "event"  # offered subprotocols mean a browser-like client


def test_beta_header() -> None:
    assert hello({"OpenAI-Beta": "realtime=v1"}).beta
    assert not hello({"OpenAI-Beta": "assistants=v2"}).beta


def test_missing_model() -> None:
    with pytest.raises(MissingModel):
        hello({}, {}).require_model()


@pytest.mark.parametrize("style", ["http", "event"])
def test_explicit_error_style_wins(style: str) -> None:
    assert hello({"Origin": "http://x"}, style=style).error_style == style
