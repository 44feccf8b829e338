"""URL and handshake building, as the openai SDK does it; decided without I/O."""

from __future__ import annotations

import pytest

from rtrelay.client import RealtimeConnection
from rtrelay.client._handshake import build_handshake, build_url


@pytest.mark.parametrize(
    ("url", "model", "expected"),
    [
        ("ws://127.0.0.1:8080/v1", "m", "ws://127.0.0.1:8080/v1/realtime?model=m"),
        ("ws://127.0.0.1:8080/v1/", "m", "ws://127.0.0.1:8080/v1/realtime?model=m"),
        ("http://relay.local/v1", "m", "ws://relay.local/v1/realtime?model=m"),
        (
            "https://api.openai.com/v1",
            "gpt-realtime",
            "wss://api.openai.com/v1/realtime?model=gpt-realtime",
        ),
        ("ws://h/v1", None, "ws://h/v1/realtime"),
        ("ws://h/v1/realtime", "m", "ws://h/v1/realtime?model=m"),
        ("ws://h/v1/realtime?model=a", "b", "ws://h/v1/realtime?model=a"),
        (
            "wss://r.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=d",
            "m",
            "wss://r.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=d",
        ),
        (
            "wss://r.openai.azure.com/openai/v1",
            "d",
            "wss://r.openai.azure.com/openai/v1/realtime?model=d",
        ),
        ("ws://h/v1?tenant=x", "m", "ws://h/v1/realtime?tenant=x&model=m"),
    ],
)
def test_urls(url: str, model: str | None, expected: str) -> None:
    assert build_url(url, model) == expected


@pytest.mark.parametrize("url", ["ftp://h/v1", "/v1/realtime", "ws:///v1"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        build_url(url)


def test_no_key_sends_no_credential() -> None:
    header = build_handshake(
        "ws://h/v1", api_key=None, model=None, auth="header", beta=False, azure=False, headers=None
    )
    assert "Authorization" not in header.headers
    sub = build_handshake(
        "ws://h/v1",
        api_key=None,
        model=None,
        auth="subprotocol",
        beta=False,
        azure=False,
        headers=None,
    )
    assert sub.protocols == ("realtime",)  # never "openai-insecure-api-key.null"


def test_extra_headers_are_added_and_can_override() -> None:
    hs = build_handshake(
        "ws://h/v1",
        api_key="k",
        model=None,
        auth="header",
        beta=False,
        azure=False,
        headers={"User-Agent": "mine", "X-Trace": "1"},
    )
    assert hs.headers["User-Agent"] == "mine"
    assert hs.headers["X-Trace"] == "1"


def test_repr_never_shows_credentials() -> None:
    hs = build_handshake(
        "ws://h/v1",
        api_key="sk-secret",
        model=None,
        auth="subprotocol",
        beta=False,
        azure=False,
        headers=None,
    )
    assert "sk-secret" not in repr(hs)
    assert "sk-secret" not in repr(RealtimeConnection("ws://h/v1", api_key="sk-secret"))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"auth": "cookie"}, "auth"),
        ({"api_key": "a\nb"}, "header"),
        ({"max_retries": -1}, "max_retries"),
        ({"min_reconnection_delay": 5, "max_reconnection_delay": 1}, "max_reconnection_delay"),
        ({"reconnection_delay_grow_factor": 0.5}, "grow_factor"),
        ({"connection_timeout": 0}, "connection_timeout"),
        ({"max_queued_events": 0}, "max_queued_events"),
    ],
)
def test_invalid_options_are_refused_up_front(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RealtimeConnection("ws://h/v1", **options)
