"""``rtrelay probe`` on GPT-Live and translation URLs: the plan, the explanation, and the
real relay in front of the simulated provider."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.probe import (
    CloseSeen,
    DnsObservation,
    ErrorInfo,
    ExitCode,
    Observations,
    ProbeUsageError,
    SessionObservation,
    TcpAttempt,
    TcpObservation,
    UpgradeObservation,
    explain,
    plan,
    plan_webrtc,
    probe,
)
from support import RunningRelay, mock_channel_settings, running_relay

LIVE_URL = "ws://127.0.0.1:8080/v1/live/sessions"
DNS = DnsObservation(host="127.0.0.1", port=8080, addresses=("127.0.0.1",), literal=True)
TCP = TcpObservation(attempts=(TcpAttempt(address="127.0.0.1", port=8080, outcome="connected"),))


def observed(session: SessionObservation) -> Observations:
    return Observations(dns=DNS, tcp=TCP, upgrade=UpgradeObservation(status=101), session=session)


# --- the plan --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "model", "asked"),
    [
        (LIVE_URL, None, "gpt-live-1"),
        (LIVE_URL + "/", "gpt-live-2", "gpt-live-2"),
        (LIVE_URL + "?model=gpt-live-hint", None, "gpt-live-hint"),
    ],
)
def test_a_live_url_is_dialled_as_it_is_and_starts_with_session_start(
    url: str, model: str | None, asked: str
) -> None:
    target, request = plan(url, key="rk_x", model=model)
    assert (target.dialogue, target.model, target.established) == (
        "live",
        asked,
        "session.started",
    )
    assert request.url.split("?")[0] == LIVE_URL
    assert request.opening is not None and request.closing is not None
    assert json.loads(request.opening) == {"type": "session.start", "session": {"model": asked}}
    assert json.loads(request.closing) == {"type": "session.close"}


@pytest.mark.parametrize(
    ("url", "model", "expected"),
    [
        (
            "ws://h:1/v1/realtime/translations",
            None,
            "ws://h:1/v1/realtime/translations?model=gpt-realtime-translate",
        ),
        (
            "http://h:1/v1/realtime/translations?model=gpt-realtime-translate-x",
            None,
            "ws://h:1/v1/realtime/translations?model=gpt-realtime-translate-x",
        ),
        (
            "ws://h:1/v1/realtime/translations/",
            "gpt-realtime-translate-y",
            "ws://h:1/v1/realtime/translations?model=gpt-realtime-translate-y",
        ),
    ],
)
def test_a_translation_url_keeps_its_path_and_gets_a_model(
    url: str, model: str | None, expected: str
) -> None:
    target, request = plan(url, model=model)
    assert request.url == expected
    assert (target.dialogue, target.established) == ("translation", "session.created")
    assert request.opening is None and request.closing is None


def test_a_realtime_url_is_planned_as_before() -> None:
    target, request = plan("ws://h:1/v1")
    assert request.url == "ws://h:1/v1/realtime?model=gpt-realtime"
    assert (target.dialogue, request.opening) == ("realtime", None)


def test_webrtc_does_not_take_a_live_or_translation_url() -> None:
    for url in (LIVE_URL, "http://h:1/v1/realtime/translations"):
        with pytest.raises(ProbeUsageError, match="--webrtc"):
            plan_webrtc(url)


# --- the explanation -------------------------------------------------------------------------


def test_session_started_is_a_live_session() -> None:
    target, _ = plan(LIVE_URL)
    session = SessionObservation(
        event_types=("session.started", "session.closed"),
        session_created_ms=5.0,
        session_id="sess_1",
        model="gpt-live-1",
        close=CloseSeen(by="server", code=1000),
        farewell="session.close",
    )
    explanation = explain(target, observed(session))
    assert explanation.exit_code is ExitCode.OK
    assert explanation.verdict.startswith("a session was established: session.started")
    [close] = [step for step in explanation.steps if step.name == "Close"]
    assert close.mark == "ok"
    assert "after the probe's session.close" in close.text


def test_a_live_error_event_then_a_close_code_is_no_session() -> None:
    target, _ = plan(LIVE_URL)
    session = SessionObservation(
        event_types=("error",),
        errors=(ErrorInfo(type="invalid_request_error", code="model_not_allowed"),),
        close=CloseSeen(by="server", code=4403, reason="invalid_request_error.model_not_allowed"),
    )
    explanation = explain(target, observed(session))
    assert explanation.exit_code is ExitCode.NO_SESSION
    [step] = [step for step in explanation.steps if step.name == "Session"]
    assert step.text == "the server sent an error instead of session.started"
    assert "model_not_allowed" in explanation.verdict


def test_no_session_started_within_the_timeout() -> None:
    target, _ = plan(LIVE_URL)
    explanation = explain(target, observed(SessionObservation(timed_out=True)))
    assert explanation.verdict.endswith("no session.started within the timeout")


# --- against the relay -----------------------------------------------------------------------


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0)) as running:
        yield running


@pytest.fixture
async def relay(provider: MockProvider) -> AsyncIterator[RunningRelay]:
    models = ("gpt-realtime", "gpt-live-1", "gpt-realtime-translate")
    async with running_relay(mock_channel_settings(provider.url, models=models)) as relay:
        yield relay


async def test_a_live_session_through_the_relay_starts_and_is_closed_cleanly(
    relay: RunningRelay, provider: MockProvider
) -> None:
    _, key = await relay.relay.parts.store.create_key(KeySpec(name="probe"))
    report = await probe(relay.ws_url + "/v1/live/sessions", key=key, quiet=0.3)
    text = report.text()
    assert report.exit_code is ExitCode.OK, text
    assert "session.started" in text and "model gpt-live-1" in text
    assert "the server closed with 1000 after the probe's session.close" in text
    assert key not in text
    await provider.wait_idle()
    sent = [e.get("type") for e in provider.events_received]
    assert sent[0] == "session.start" and sent[-1] == "session.close"
    assert "input_audio" not in " ".join(str(kind) for kind in sent)  # no audio, nothing billed


async def test_a_live_model_the_key_may_not_use_is_explained(relay: RunningRelay) -> None:
    _, key = await relay.relay.parts.store.create_key(
        KeySpec(name="probe", models=("gpt-realtime",))
    )
    report = await probe(relay.ws_url + "/v1/live/sessions", key=key, quiet=0.3)
    text = report.text()
    assert report.exit_code is ExitCode.NO_SESSION, text
    assert "the server sent an error instead of session.started" in text
    assert "model_not_allowed" in text
    assert "4403" in text


async def test_a_translation_session_through_the_relay(relay: RunningRelay) -> None:
    _, key = await relay.relay.parts.store.create_key(KeySpec(name="probe"))
    report = await probe(relay.ws_url + "/v1/realtime/translations", key=key, quiet=0.3)
    text = report.text()
    assert report.exit_code is ExitCode.OK, text
    assert "session.created" in text and "model gpt-realtime-translate" in text
