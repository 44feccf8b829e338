"""The upstream URL and headers per channel kind (protocol.md §1): pure, no sockets."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from rtrelay.config import Channel
from rtrelay.route.upstream import Upstream

SECRET = "az-provider-secret-0123456789abcdef"


def request_for(
    beta: bool = False, **fields: Any
) -> tuple[str, str, dict[str, list[str]], dict[str, str]]:
    fields.setdefault("models", {"gpt-realtime": "my-rt-prod"})
    fields.setdefault("api_key_env", "AZ_KEY")
    channel = Channel(name="c", **fields)
    req = Upstream(channel, SECRET).request("gpt-realtime", beta=beta, request_id="req_1")
    url = urlsplit(req.url)
    return f"{url.scheme}://{url.netloc}", url.path, parse_qs(url.query), req.headers


def test_azure_preview_form_with_api_key_header() -> None:
    origin, path, query, headers = request_for(
        kind="azure",
        base_url="wss://res.openai.azure.com/",
        api_version="2025-04-01-preview",
        auth="api-key",
    )
    assert (origin, path) == ("wss://res.openai.azure.com", "/openai/realtime")
    assert query == {"api-version": ["2025-04-01-preview"], "deployment": ["my-rt-prod"]}
    assert headers["api-key"] == SECRET
    assert "Authorization" not in headers
    assert headers["X-Request-Id"] == "req_1"


def test_azure_ga_form_with_entra_bearer() -> None:
    _, path, query, headers = request_for(kind="azure", base_url="wss://res.openai.azure.com")
    assert path == "/openai/v1/realtime"
    assert query == {"model": ["my-rt-prod"]}
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert "api-key" not in headers


def test_openai_form_and_the_beta_header() -> None:
    _, path, query, headers = request_for(base_url="wss://api.openai.com/v1", beta=True)
    assert (path, query) == ("/v1/realtime", {"model": ["my-rt-prod"]})
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["OpenAI-Beta"] == "realtime=v1"
    _, _, _, ga_headers = request_for(base_url="wss://api.openai.com/v1")
    assert "OpenAI-Beta" not in ga_headers


@pytest.mark.parametrize(
    ("auth_header", "expected"),
    [("x-api-key", SECRET), ("Authorization", f"Bearer {SECRET}")],
)
def test_openai_compatible_template_and_auth_header(auth_header: str, expected: str) -> None:
    origin, path, query, headers = request_for(
        kind="openai-compatible",
        url_template="wss://gw.example/rt/{model}/ws?tier=a",
        auth_header=auth_header,
        models={"gpt-realtime": "team/rt prod"},
    )
    assert (origin, path) == ("wss://gw.example", "/rt/team%2Frt%20prod/ws")
    assert query == {"tier": ["a"]}
    assert headers[auth_header] == expected


@pytest.mark.parametrize("secret", [None, "", "   "])
@pytest.mark.parametrize("kind", ["openai", "azure", "openai-compatible"])
def test_no_or_an_empty_key_is_never_sent(kind: str, secret: str | None) -> None:
    channel = Channel(
        name="c",
        kind=kind,  # type: ignore[arg-type]
        models={"m": "d"},
        auth="api-key",
        url_template="wss://gw.example/{model}",
    )
    req = Upstream(channel, secret).request("m", beta=False, request_id="r")
    assert set(req.headers) == {"X-Request-Id"}


def test_repr_hides_the_key() -> None:
    channel = Channel(name="c", kind="azure", models={"m": "d"}, auth="api-key")
    with_key = Upstream(channel, SECRET).request("m", beta=False, request_id="r")
    assert with_key.headers["api-key"] == SECRET
    assert SECRET not in repr(with_key)
    assert SECRET not in repr(Upstream(channel, SECRET))
