"""How the probe builds the handshake, and how it keeps the key out of sight."""

from __future__ import annotations

import pytest

import rtrelay.probe
from rtrelay.probe import ProbeUsageError, mask_key, plan
from rtrelay.probe._redact import redact

KEY = "rk_test_abcdefghijklmnopxy"


def test_mask_key_keeps_head_and_tail_only() -> None:
    assert mask_key(KEY) == "rk_te…xy"
    assert mask_key("short") == "…(5 chars)"
    assert mask_key(None) is None


def test_redact_replaces_every_occurrence() -> None:
    assert redact(f"a {KEY} b {KEY}", KEY) == "a rk_te…xy b rk_te…xy"
    assert redact("nothing here", KEY) == "nothing here"
    assert redact("x", None) == "x"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://127.0.0.1:9/v1", "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime"),
        ("http://127.0.0.1:9/v1/", "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime"),
        ("https://relay.example", "wss://relay.example/realtime?model=gpt-realtime"),
        ("wss://h/v1/realtime?model=m", "wss://h/v1/realtime?model=m"),
        ("wss://h/openai/realtime?deployment=d&api-version=v", None),
        ("wss://h/v1/realtime?call_id=c", None),
    ],
)
def test_urls_are_completed_like_an_sdk_base_url(url: str, expected: str | None) -> None:
    target, request = plan(url)
    assert target.url == (expected or url)
    assert request.url == target.url


def test_model_option_overrides_the_url() -> None:
    assert plan("ws://h/v1/realtime?model=a", model="b")[0].url == "ws://h/v1/realtime?model=b"
    azure = plan("wss://h/openai/realtime?deployment=a&api-version=v", model="b")[0]
    assert "deployment=b" in azure.url


@pytest.mark.parametrize("url", ["ftp://h/v1", "ws:///v1", "not a url"])
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(ProbeUsageError):
        plan(url)


def test_browser_mode_offers_subprotocols_like_openai_node() -> None:
    target, request = plan("ws://h/v1", key=KEY, subprotocol_auth=True, beta=True)
    assert request.protocols == (
        "realtime",
        f"openai-insecure-api-key.{KEY}",
        "openai-beta.realtime-v1",
    )
    assert "Authorization" not in request.headers
    assert target.protocols == (
        "realtime",
        "openai-insecure-api-key.rk_te…xy",
        "openai-beta.realtime-v1",
    )
    assert target.mode == "browser"


def test_browser_mode_without_key_offers_only_realtime() -> None:
    _, request = plan("ws://h/v1", subprotocol_auth=True)
    assert request.protocols == ("realtime",)


def test_server_mode_sends_bearer_and_beta_header() -> None:
    target, request = plan("ws://h/v1", key=KEY, beta=True, origin="https://o.example")
    assert request.protocols == ()
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["OpenAI-Beta"] == "realtime=v1"
    assert request.origin == "https://o.example"
    assert target.key == "rk_te…xy"


def test_the_key_is_in_no_repr() -> None:
    target, request = plan("ws://h/v1", key=KEY, subprotocol_auth=True)
    assert KEY not in repr(target)
    # The request carries it on purpose, but never in its repr.
    assert "secret" not in repr(request)
    assert KEY not in repr(request).replace(f"openai-insecure-api-key.{KEY}", "")


def test_exports_are_sorted_and_importable() -> None:
    names = rtrelay.probe.__all__
    assert list(names) == sorted(names)
    for name in names:
        assert getattr(rtrelay.probe, name) is not None
