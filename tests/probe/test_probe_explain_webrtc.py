"""``explain_webrtc`` on hand-built observations: the failures a loopback rig cannot stage
(ICE and DTLS failing, an answer a client cannot use, a page's CORS), and the SDP summary."""

from __future__ import annotations

import pytest

from rtrelay.probe import (
    CallObservation,
    DnsObservation,
    ErrorInfo,
    ExitCode,
    HangupObservation,
    Observations,
    OfferObservation,
    SdpSummary,
    SessionObservation,
    TcpAttempt,
    TcpObservation,
    explain_webrtc,
    plan_webrtc,
)
from rtrelay.probe._webrtc import summarise_sdp

ANSWER = """v=0\r
o=- 1 2 IN IP4 0.0.0.0\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1\r
m=audio 40000 UDP/TLS/RTP/SAVPF 111\r
a=candidate:1 1 udp 2130706431 203.0.113.7 40000 typ host\r
a=candidate:2 1 tcp 1518280447 203.0.113.7 443 typ host tcptype passive\r
a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\r
m=application 40000 UDP/DTLS/SCTP webrtc-datachannel\r
a=candidate:1 1 udp 2130706431 203.0.113.7 40000 typ host\r
"""

GOOD_SDP = SdpSummary(
    audio=True,
    data_channel=True,
    candidates=("udp 203.0.113.7:40000 host",),
    fingerprint="sha-256 AB:CD:EF:01:23:45:67",
)
ANSWERED = OfferObservation(
    status=201,
    reason="Created",
    elapsed_ms=20.0,
    headers={
        "X-Request-Id": "req_1",
        "Location": "/v1/realtime/calls/rcall_1",
        "Content-Type": "application/sdp",
    },
    sdp=GOOD_SDP,
)
HUNG_UP = HangupObservation(status=200)


def connected(session: SessionObservation, hangup: HangupObservation = HUNG_UP) -> CallObservation:
    """A call whose ICE, DTLS and data channel all came up."""
    return CallObservation(
        ice_state="completed",
        ice_ms=30.0,
        connection_state="connected",
        connected_ms=40.0,
        channel_ms=50.0,
        session=session,
        hangup=hangup,
    )


def observe(offer: OfferObservation, call: CallObservation | None = None) -> Observations:
    return Observations(
        dns=DnsObservation(host="203.0.113.7", port=8080, addresses=("203.0.113.7",), literal=True),
        tcp=TcpObservation(
            attempts=(TcpAttempt(address="203.0.113.7", port=8080, outcome="connected"),)
        ),
        offer=offer,
        call=call,
    )


def explained(
    offer: OfferObservation, call: CallObservation | None = None, origin: str | None = None
) -> tuple[ExitCode, dict[str, str], str]:
    target, _ = plan_webrtc("http://203.0.113.7:8080/v1", key="rk_x", origin=origin)
    explanation = explain_webrtc(target, observe(offer, call))
    text = "\n".join(
        [f"{s.name}: {s.text}" for s in explanation.steps]
        + [d for s in explanation.steps for d in s.details]
        + [explanation.verdict]
    )
    return explanation.exit_code, {s.name: s.mark for s in explanation.steps}, text


def test_the_answers_sections_candidates_and_fingerprint_are_read() -> None:
    summary = summarise_sdp(ANSWER)
    assert summary.audio and summary.data_channel
    assert summary.candidates == ("udp 203.0.113.7:40000 host", "tcp 203.0.113.7:443 host")
    assert summary.fingerprint == "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
    assert summarise_sdp("v=0\r\nm=audio 9 RTP/AVP 0\r\n") == SdpSummary(audio=True)


def test_calls_urls_are_completed_like_the_sdks() -> None:
    for url in ("http://h:8080/v1", "ws://h:8080/v1/realtime", "http://h:8080/v1/realtime/calls"):
        target, request = plan_webrtc(url, key="rk_secret_value_123", model="gpt-realtime-mini")
        assert request.url == "http://h:8080/v1/realtime/calls?model=gpt-realtime-mini", url
        assert request.headers["Content-Type"] == "application/sdp"
        assert "rk_secret_value_123" not in repr(target)


def test_ice_that_finds_no_path_names_the_candidates_and_exits_1() -> None:
    call = CallObservation(ice_state="failed", connection_state="failed", hangup=HUNG_UP)
    code, marks, text = explained(ANSWERED, call)
    assert code is ExitCode.NO_SESSION
    assert marks["ICE"] == "fail" and "DTLS" not in marks
    assert "no candidate pair worked" in text
    assert "udp 203.0.113.7:40000 host" in text
    assert "ICE found no path for media" in text


def test_dtls_that_fails_after_ice_says_so() -> None:
    call = CallObservation(
        ice_state="completed", ice_ms=30.0, connection_state="failed", hangup=HUNG_UP
    )
    code, marks, text = explained(ANSWERED, call)
    assert code is ExitCode.NO_SESSION
    assert (marks["ICE"], marks["DTLS"]) == ("ok", "fail")
    assert "the DTLS handshake did not complete" in text


def test_an_error_event_instead_of_session_created_is_explained() -> None:
    session = SessionObservation(
        event_types=("error",),
        errors=(ErrorInfo(type="invalid_request_error", code="insufficient_quota"),),
    )
    code, marks, text = explained(ANSWERED, connected(session))
    assert code is ExitCode.NO_SESSION
    assert marks["Session"] == "fail"
    assert "this key's budget is spent" in text


@pytest.mark.parametrize(
    ("summary", "said"),
    [
        (
            SdpSummary(audio=True, candidates=GOOD_SDP.candidates, fingerprint="x"),
            "no data channel",
        ),
        (SdpSummary(audio=True, data_channel=True, fingerprint="x"), "no ICE candidate"),
        (
            SdpSummary(audio=True, data_channel=True, candidates=GOOD_SDP.candidates),
            "no DTLS fingerprint",
        ),
    ],
)
def test_an_answer_a_client_cannot_use_exits_7(summary: SdpSummary, said: str) -> None:
    offer = OfferObservation(status=201, headers=ANSWERED.headers, sdp=summary)
    code, marks, text = explained(offer, CallObservation())
    assert code is ExitCode.CLIENT_REFUSES
    assert marks["SDP answer"] == "fail"
    assert said in text


def test_a_page_on_an_origin_the_answer_does_not_allow_exits_7() -> None:
    code, marks, text = explained(ANSWERED, CallObservation(), origin="https://app.example")
    assert code is ExitCode.CLIENT_REFUSES
    assert marks["CORS"] == "fail"
    assert "a page on https://app.example cannot read this answer" in text
    allowed = OfferObservation(
        status=201,
        headers={**ANSWERED.headers, "Access-Control-Allow-Origin": "https://app.example"},
        sdp=GOOD_SDP,
    )
    _, marks, _ = explained(allowed, CallObservation(), origin="https://app.example")
    assert "CORS" not in marks


def test_a_bare_404_points_at_the_calls_path_and_a_timeout_is_no_answer() -> None:
    code, _, text = explained(OfferObservation(status=404, reason="Not Found", body="nope"))
    assert code is ExitCode.HTTP
    assert "take offers at /v1/realtime/calls" in text
    code, _, text = explained(OfferObservation(failure="no HTTP answer within 5 s"))
    assert code is ExitCode.HTTP
    assert "no HTTP answer to the offer: no HTTP answer within 5 s" in text


def test_a_failed_hangup_is_shown_but_the_call_still_counts() -> None:
    session = SessionObservation(event_types=("session.created",), session_created_ms=60.0)
    refused = HangupObservation(status=404, error=ErrorInfo(code="call_not_found"))
    code, marks, text = explained(ANSWERED, connected(session, refused))
    assert code is ExitCode.OK
    assert marks["Hangup"] == "fail"
    assert "could not hang it up" in text
