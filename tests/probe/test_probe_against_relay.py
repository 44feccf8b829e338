"""``rtrelay probe`` against the real relay (issue 6): healthy, bad key in both styles."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.probe import ExitCode, probe
from support import RunningRelay, mock_channel_settings, running_relay


@pytest.fixture
async def relay() -> AsyncIterator[RunningRelay]:
    async with (
        MockProvider(MockOptions(realtime_pacing=0)) as provider,
        running_relay(mock_channel_settings(provider.url)) as relay,
    ):
        yield relay


async def test_healthy_relay_as_a_browser(relay: RunningRelay) -> None:
    _, key = await relay.relay.parts.store.create_key(KeySpec(name="probe"))
    report = await probe(
        relay.ws_url + "/v1", key=key, subprotocol_auth=True, origin="http://localhost", quiet=0.3
    )
    text = report.text()
    assert report.exit_code == ExitCode.OK
    assert "session.created" in text
    assert "realtime" in text  # the echoed subprotocol is reported
    assert key not in text


async def test_bad_key_as_a_server_sdk_is_an_http_401(relay: RunningRelay) -> None:
    report = await probe(relay.ws_url + "/v1", key="rk_wrong_key_0000000000", quiet=0.3)
    text = report.text()
    assert report.exit_code == ExitCode.HTTP
    assert "401" in text
    assert "invalid_api_key" in text
    assert "rk_wrong_key_0000000000" not in text


async def test_bad_key_as_a_browser_is_an_error_event_and_4401(relay: RunningRelay) -> None:
    report = await probe(
        relay.ws_url + "/v1",
        key="rk_wrong_key_0000000000",
        subprotocol_auth=True,
        origin="http://localhost",
        quiet=0.3,
    )
    text = report.text()
    assert report.exit_code == ExitCode.NO_SESSION
    assert "4401" in text
    assert "invalid_api_key" in text
