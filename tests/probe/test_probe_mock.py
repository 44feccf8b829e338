"""The probe against the simulated provider (``rtrelay.mock``), as an operator would run it."""

from __future__ import annotations

import pytest
from probe_helpers import KEY

from rtrelay.mock import MockOptions, MockProvider
from rtrelay.probe import ExitCode, ProbeReport, probe

pytestmark = pytest.mark.timeout(30)


def text(report: ProbeReport) -> str:
    out = report.text()
    assert KEY not in out
    assert KEY not in report.json()
    return out


async def test_healthy_provider_session_is_established() -> None:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        report = await probe(provider.url, key=KEY, subprotocol_auth=True, quiet=0.3)
    out = text(report)
    assert report.exit_code is ExitCode.OK
    assert "✓ HTTP upgrade: 101 Switching Protocols" in out
    assert "✓ Subprotocol: the server echoed 'realtime', as a browser requires" in out
    assert "✓ Session: session.created " in out
    assert "model gpt-realtime" in out
    assert "✓ Close: the probe closed the session with 1000" in out
    session = report.observations.session
    assert session is not None
    assert session.event_types[0] == "session.created"


async def test_provider_close_3000_on_a_bad_key() -> None:
    options = MockOptions(realtime_pacing=0, api_keys=frozenset({"sk-the-right-one"}))
    async with MockProvider(options) as provider:
        report = await probe(provider.url, key=KEY, timeout=5)
    out = text(report)
    assert report.exit_code is ExitCode.NO_SESSION
    assert "✗ Session: the server sent an error instead of session.created" in out
    assert "invalid_api_key" in out
    assert "✗ Close: the server closed with 3000 'invalid_request_error.invalid_api_key'" in out
    assert "OpenAI's close for a fatal error" in out
    assert "3000 comes from the provider" in out
    assert "no session was established: invalid_api_key" in report.explanation.verdict


async def test_beta_shape_refused_with_4000() -> None:
    async with MockProvider(MockOptions(realtime_pacing=0, ga_only=True)) as provider:
        report = await probe(provider.url, key=KEY, beta=True, timeout=5)
    out = text(report)
    assert report.exit_code is ExitCode.NO_SESSION
    assert "closed with 4000" in out
    assert "retired beta API shape" in out
    assert "drop --beta" in report.explanation.verdict


async def test_drop_after_session_created_is_a_1006() -> None:
    options = MockOptions(realtime_pacing=0, drop_after_events=1)
    async with MockProvider(options) as provider:
        report = await probe(provider.url, key=KEY, timeout=5, quiet=2.0)
    out = text(report)
    assert report.exit_code is ExitCode.OK  # the session was established before the drop
    assert "✗ Close: the connection dropped without a close frame (1006)" in out


async def test_refused_handshake_body_is_read() -> None:
    body = '{"error": {"type": "invalid_request_error", "code": "model_not_found", "message": "x"}}'
    options = MockOptions(realtime_pacing=0, refuse_status=404, refuse_body=body)
    async with MockProvider(options) as provider:
        report = await probe(provider.url, key=KEY, model="no-such-model")
    out = text(report)
    assert report.exit_code is ExitCode.HTTP
    assert "refused with 404 Not Found" in out
    assert "error invalid_request_error.model_not_found: x" in out
    assert "no upstream channel serves this model" in out
    assert "model=no-such-model" in out
