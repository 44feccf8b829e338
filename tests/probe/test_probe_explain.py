"""Explanations from hand-built observations: no sockets, no clock."""

from __future__ import annotations

import pytest

from rtrelay import errors
from rtrelay.errors import ERROR_CLASSES
from rtrelay.probe import (
    CloseSeen,
    DnsObservation,
    ErrorInfo,
    ExitCode,
    Observations,
    SessionObservation,
    TcpAttempt,
    TcpObservation,
    TlsObservation,
    UpgradeObservation,
    explain,
    plan,
)
from rtrelay.probe._meanings import (
    ADVICE,
    close_meaning,
    error_advice,
    error_meaning,
    reason_error_code,
    status_meaning,
    tls_verify_meaning,
)

KEY = "rk_test_abcdefghijklmnopxy"
DNS = DnsObservation(host="127.0.0.1", port=8080, addresses=("127.0.0.1",), literal=True)
TCP = TcpObservation(
    attempts=(TcpAttempt(address="127.0.0.1", port=8080, outcome="connected", elapsed_ms=0.3),)
)
CREATED = SessionObservation(
    event_types=("session.created",),
    session_created_ms=4.0,
    close=CloseSeen(by="probe", code=1000),
)


def upgraded(protocol: str | None = None) -> UpgradeObservation:
    headers = {"Sec-WebSocket-Protocol": protocol} if protocol else {}
    return UpgradeObservation(status=101, reason="Switching Protocols", headers=headers)


def lines(explanation: object) -> str:
    from rtrelay.probe import Explanation

    assert isinstance(explanation, Explanation)
    out = []
    for s in explanation.steps:
        out.append(f"{s.mark} {s.name}: {s.text}")
        out.extend(s.details)
    out.append(explanation.verdict)
    return "\n".join(out)


# --- the table of meanings stays in step with rtrelay.errors ---------------------------


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.code)
def test_every_error_table_row_has_meaning_and_advice(cls: type[errors.RelayError]) -> None:
    assert cls in ADVICE
    assert error_meaning(cls.code) == cls.default_message
    assert error_advice(cls.code) == ADVICE[cls]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.code)
def test_every_table_close_code_has_a_meaning(cls: type[errors.RelayError]) -> None:
    meaning = close_meaning(cls.close_code)
    assert meaning != "not a valid close code"
    if cls.close_code >= 4000 and cls is not errors.InternalError:
        assert cls.code in meaning


def test_close_codes_in_words() -> None:
    assert close_meaning(1000).startswith("normal closure")
    assert "idle_timeout" in close_meaning(1000)
    assert "session_expired" in close_meaning(1001)
    assert "relay_shutting_down" in close_meaning(1001)
    assert "abnormal closure" in close_meaning(1006)
    assert "upstream_disconnected" in close_meaning(1011)
    assert "fatal error" in close_meaning(3000)
    assert "beta_api_shape_disabled" in close_meaning(4000)
    assert close_meaning(4401) == "rtrelay's mirror of HTTP 401: missing_api_key, invalid_api_key"
    assert "upstream_unavailable" in close_meaning(4503)
    assert "application-defined" in close_meaning(4999)
    assert close_meaning(None) == "no close code"


def test_openai_only_codes_are_explained() -> None:
    assert error_meaning("beta_api_shape_disabled") == "The Realtime beta API shape is retired."
    advice = error_advice("beta_api_shape_disabled")
    assert advice is not None
    assert "--beta" in advice
    assert error_meaning("something_new") is None
    assert error_advice(None) is None


def test_reason_in_openai_form_names_the_error_code() -> None:
    assert reason_error_code("invalid_request_error.invalid_api_key") == "invalid_api_key"
    assert reason_error_code("Your session hit the maximum duration of 60 minutes.") is None
    assert reason_error_code("") is None


def test_http_statuses_in_words() -> None:
    assert "invalid_api_key" in status_meaning(401)
    assert "upstream_timeout" in status_meaning(504)
    assert "do not follow redirects" in status_meaning(302)
    assert "not a WebSocket endpoint" in status_meaning(200)
    assert status_meaning(418) == "I'm a Teapot"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (10, "expired"),
        (18, "self-signed"),
        (19, "unknown CA"),
        (20, "unknown CA"),
        (62, "hostname mismatch"),
        (64, "IP address mismatch"),
        (None, "OpenSSL's own words"),
    ],
)
def test_tls_verify_codes_in_words(code: int | None, words: str) -> None:
    assert words in tls_verify_meaning(code, "OpenSSL's own words")


# --- explain(): each stage, its verdict and exit code ----------------------------------


def test_dns_failure_stops_there() -> None:
    target, _ = plan("wss://nowhere.invalid/v1")
    dns = DnsObservation(host="nowhere.invalid", port=443, error="Name or service not known")
    result = explain(target, Observations(dns=dns))
    assert result.exit_code is ExitCode.DNS
    assert [s.name for s in result.steps] == ["DNS"]
    assert "does not resolve" in result.verdict


def test_tcp_timeout_mentions_firewalls_and_lists_each_address() -> None:
    target, _ = plan("ws://relay.example/v1")
    dns = DnsObservation(host="relay.example", port=80, addresses=("192.0.2.1", "2001:db8::1"))
    tcp = TcpObservation(
        attempts=(
            TcpAttempt(address="192.0.2.1", port=80, outcome="timeout", detail="nothing in 5 s"),
            TcpAttempt(address="2001:db8::1", port=80, outcome="unreachable", detail="no route"),
        )
    )
    result = explain(target, Observations(dns=dns, tcp=tcp))
    assert result.exit_code is ExitCode.TCP
    text = lines(result)
    assert "192.0.2.1 port 80: no answer (nothing in 5 s): a firewall may drop" in text
    assert "2001:db8::1 port 80: unreachable (no route)" in text


def test_plain_ws_to_a_remote_host_warns_about_cleartext() -> None:
    target, _ = plan("ws://relay.example/v1", key=KEY)
    dns = DnsObservation(host="relay.example", port=80, addresses=("192.0.2.1",))
    tcp = TcpObservation(attempts=(TcpAttempt(address="192.0.2.1", port=80, outcome="connected"),))
    obs = Observations(dns=dns, tcp=tcp, upgrade=upgraded(), session=CREATED)
    assert "cross the network unencrypted" in lines(explain(target, obs))


def test_expired_certificate_fails_tls() -> None:
    target, _ = plan("wss://127.0.0.1:8443/v1")
    tls = TlsObservation(
        ok=False, problem="certificate", verify_code=10, detail="certificate has expired"
    )
    result = explain(target, Observations(dns=DNS, tcp=TCP, tls=tls))
    assert result.exit_code is ExitCode.TLS
    assert "the certificate was rejected: the certificate has expired" in lines(result)


def test_server_echo_without_offer_is_refused_by_rfc_clients() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1", key=KEY)
    obs = Observations(dns=DNS, tcp=TCP, upgrade=upgraded("realtime"), session=CREATED)
    result = explain(target, obs)
    assert result.exit_code is ExitCode.CLIENT_REFUSES
    assert "though none was offered" in lines(result)


def test_echo_of_a_protocol_not_offered_is_refused_by_browsers() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1", key=KEY, subprotocol_auth=True)
    obs = Observations(dns=DNS, tcp=TCP, upgrade=upgraded("chat"), session=CREATED)
    result = explain(target, obs)
    assert result.exit_code is ExitCode.CLIENT_REFUSES
    assert "echoed 'chat', which was not offered" in result.verdict


def test_echo_of_several_protocols_is_refused_by_browsers() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1", key=KEY, subprotocol_auth=True)
    obs = Observations(dns=DNS, tcp=TCP, upgrade=upgraded("realtime, chat"), session=CREATED)
    assert explain(target, obs).exit_code is ExitCode.CLIENT_REFUSES


def test_provider_close_3000_explains_the_reason_code() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1", key=KEY)
    session = SessionObservation(
        event_types=("error",),
        errors=(
            ErrorInfo(
                type="invalid_request_error",
                code="invalid_api_key",
                message="Incorrect API key provided: rk_te…xy.",
            ),
        ),
        close=CloseSeen(by="server", code=3000, reason="invalid_request_error.invalid_api_key"),
    )
    result = explain(target, Observations(dns=DNS, tcp=TCP, upgrade=upgraded(), session=session))
    assert result.exit_code is ExitCode.NO_SESSION
    text = lines(result)
    assert "closed with 3000 'invalid_request_error.invalid_api_key': OpenAI's close" in text
    assert "the relay does not know this key" in text


def test_beta_close_4000_without_error_event_still_says_what_to_do() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1", key=KEY, beta=True)
    session = SessionObservation(
        close=CloseSeen(
            by="server", code=4000, reason="invalid_request_error.beta_api_shape_disabled"
        )
    )
    result = explain(target, Observations(dns=DNS, tcp=TCP, upgrade=upgraded(), session=session))
    assert result.exit_code is ExitCode.NO_SESSION
    assert "retired beta API shape" in lines(result)
    assert "drop --beta" in result.verdict


def test_session_expired_close_after_a_session_counts_as_established() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1", key=KEY)
    session = SessionObservation(
        event_types=("session.created", "error"),
        session_created_ms=3.0,
        errors=(ErrorInfo(type="invalid_request_error", code="session_expired", message="m"),),
        close=CloseSeen(by="server", code=1001, reason="Your session hit the maximum duration."),
    )
    result = explain(target, Observations(dns=DNS, tcp=TCP, upgrade=upgraded(), session=session))
    assert result.exit_code is ExitCode.OK
    text = lines(result)
    assert "fail Events" in text
    assert "error invalid_request_error.session_expired: m" in text
    assert "going away" in text


def test_drop_without_close_frame_is_1006() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1", key=KEY)
    session = SessionObservation(close=CloseSeen(by="network", code=1006))
    result = explain(target, Observations(dns=DNS, tcp=TCP, upgrade=upgraded(), session=session))
    assert result.exit_code is ExitCode.NO_SESSION
    assert "dropped without a close frame (1006)" in lines(result)


def test_upgrade_without_http_answer() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1")
    up = UpgradeObservation(failure="the server closed the connection without an HTTP answer")
    result = explain(target, Observations(dns=DNS, tcp=TCP, upgrade=up))
    assert result.exit_code is ExitCode.HTTP
    assert result.verdict.startswith("no WebSocket answer: the server closed the connection")


def test_non_json_refusal_body_is_shown() -> None:
    target, _ = plan("ws://127.0.0.1:8080/v1")
    up = UpgradeObservation(status=404, reason="Not Found", body="404: Not Found")
    text = lines(explain(target, Observations(dns=DNS, tcp=TCP, upgrade=up)))
    assert "body: 404: Not Found" in text
    assert "model_not_found" in text
