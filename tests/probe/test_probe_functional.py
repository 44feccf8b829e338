"""The probe against real sockets: ad-hoc aiohttp servers, closed ports, bad names, bad TLS."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from aiohttp import web
from probe_helpers import KEY, Serve, server_context, session_created

from rtrelay.errors import InvalidApiKey, UpstreamUnavailable
from rtrelay.probe import ExitCode, ProbeReport, mask_key, probe

pytestmark = pytest.mark.timeout(30)

MASKED = mask_key(KEY)


def assert_no_secret(report: ProbeReport) -> None:
    assert KEY not in report.text()
    assert KEY not in report.json()
    assert KEY not in repr(report)


def step(report: ProbeReport, name: str) -> str:
    """The step's line and its details, as printed."""
    lines = report.text().splitlines()
    for i, line in enumerate(lines):
        if line[2:].startswith(f"{name}: "):
            block = [line]
            block += [d for d in lines[i + 1 :] if d.startswith("    ")][: _details(lines, i)]
            return "\n".join(block)
    raise AssertionError(f"no {name} step in:\n{report.text()}")


def _details(lines: list[str], i: int) -> int:
    n = 0
    for line in lines[i + 1 :]:
        if not line.startswith("    "):
            break
        n += 1
    return n


async def healthy(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("realtime",))
    await ws.prepare(request)
    await ws.send_json(session_created())
    await ws.send_json({"type": "conversation.created", "event_id": "event_2"})
    async for _ in ws:
        pass
    return ws


async def no_echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()  # offers nothing back, whatever the client offered
    await ws.prepare(request)
    await ws.send_json(session_created())
    async for _ in ws:
        pass
    return ws


async def echoes_key(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(f"openai-insecure-api-key.{KEY}",))
    await ws.prepare(request)
    await ws.send_json(session_created())
    async for _ in ws:
        pass
    return ws


async def refuses_401(request: web.Request) -> web.Response:
    error = InvalidApiKey()
    return web.json_response(
        error.to_http_body(), status=401, headers={"X-Request-Id": "req_probe401"}
    )


async def refuses_in_event_style(request: web.Request) -> web.WebSocketResponse:
    error = InvalidApiKey()
    ws = web.WebSocketResponse(protocols=("realtime",))
    await ws.prepare(request)
    await ws.send_json(error.to_event("event_refusal"))
    await ws.close(code=error.close_code, message=error.close_reason().encode())
    return ws


async def unavailable_503(request: web.Request) -> web.Response:
    error = UpstreamUnavailable(retry_after=7)
    return web.json_response(
        error.to_http_body(), status=503, headers={**error.http_headers(), "X-Request-Id": "r503"}
    )


async def redirects(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("wss://elsewhere.example/v1/realtime")


async def silent(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("realtime",))
    await ws.prepare(request)
    async for _ in ws:
        pass
    return ws


async def test_healthy_server_as_browser_is_established_and_closed_with_1000(
    serve: Serve,
) -> None:
    async with serve(healthy) as url:
        report = await probe(
            url, key=KEY, subprotocol_auth=True, origin="https://app.example", quiet=0.2
        )
    assert report.exit_code is ExitCode.OK
    assert report.ok
    assert "echoed 'realtime', as a browser requires" in step(report, "Subprotocol")
    assert "session.created " in step(report, "Session")
    assert "id sess_probe, model gpt-realtime" in step(report, "Session")
    assert "2 received: session.created, conversation.created" in step(report, "Events")
    assert "the probe closed the session with 1000" in step(report, "Close")
    assert "Verdict: a session was established" in report.text()
    assert f"openai-insecure-api-key.{MASKED}" in report.text()
    assert "Origin https://app.example" in report.text()
    assert_no_secret(report)


async def test_events_limit_closes_after_n_events(serve: Serve) -> None:
    async with serve(healthy) as url:
        report = await probe(url, key=KEY, events=1, quiet=5.0)
    assert report.exit_code is ExitCode.OK
    assert report.observations.session is not None
    assert report.observations.session.event_types == ("session.created",)
    assert "closed the session with 1000 (normal closure) after 1 event(s)" in report.text()


async def test_no_subprotocol_echo_means_the_browser_will_refuse(serve: Serve) -> None:
    async with serve(no_echo) as url:
        report = await probe(url, key=KEY, subprotocol_auth=True, quiet=0.2)
    assert report.exit_code is ExitCode.CLIENT_REFUSES
    assert "did not echo a subprotocol: a browser will refuse the connection" in step(
        report, "Subprotocol"
    )
    assert "Sec-WebSocket-Protocol: realtime" in step(report, "Subprotocol")
    assert "a client that does not check would get a session" in report.text()
    assert_no_secret(report)


async def test_no_echo_is_fine_for_a_server_sdk(serve: Serve) -> None:
    async with serve(no_echo) as url:
        report = await probe(url, key=KEY, quiet=0.2)
    assert report.exit_code is ExitCode.OK
    assert "Subprotocol" not in report.text()


async def test_echoing_the_key_protocol_is_called_a_leak(serve: Serve) -> None:
    async with serve(echoes_key) as url:
        report = await probe(url, key=KEY, subprotocol_auth=True, quiet=0.2)
    assert report.exit_code is ExitCode.OK
    assert f"echoed the key-bearing subprotocol openai-insecure-api-key.{MASKED}" in step(
        report, "Subprotocol"
    )
    assert "that leaks the key" in report.text()
    assert "leaks the key in its handshake answer" in report.explanation.verdict
    assert_no_secret(report)


async def test_http_401_refusal_is_decoded_with_the_error_table(serve: Serve) -> None:
    async with serve(refuses_401) as url:
        report = await probe(url, key=KEY)
    assert report.exit_code is ExitCode.HTTP
    upgrade = step(report, "HTTP upgrade")
    assert "refused with 401 Unauthorized" in upgrade
    assert "X-Request-Id: req_probe401" in upgrade
    assert "error invalid_request_error.invalid_api_key" in upgrade
    assert "the relay does not know this key" in upgrade
    assert "HTTP 401" in report.explanation.verdict
    assert "invalid_api_key" in report.explanation.verdict
    assert report.observations.upgrade is not None
    assert report.observations.upgrade.error is not None
    assert report.observations.upgrade.error.code == "invalid_api_key"
    assert_no_secret(report)


async def test_http_refusal_to_a_browser_says_it_only_sees_1006(serve: Serve) -> None:
    async with serve(refuses_401) as url:
        report = await probe(url, key=KEY, subprotocol_auth=True)
    assert report.exit_code is ExitCode.HTTP
    assert "a browser sees none of this, only close code 1006" in step(report, "HTTP upgrade")


async def test_event_style_refusal_explains_the_error_and_close_4401(serve: Serve) -> None:
    async with serve(refuses_in_event_style) as url:
        report = await probe(url, key=KEY, subprotocol_auth=True, timeout=5)
    assert report.exit_code is ExitCode.NO_SESSION
    session = step(report, "Session")
    assert "the server sent an error instead of session.created" in session
    assert "invalid_request_error.invalid_api_key" in session
    assert "the relay does not know this key" in session
    close = step(report, "Close")
    assert "the server closed with 4401 'invalid_request_error.invalid_api_key'" in close
    assert "rtrelay's mirror of HTTP 401" in close
    assert "no session was established: invalid_api_key" in report.explanation.verdict


async def test_503_with_retry_after(serve: Serve) -> None:
    async with serve(unavailable_503) as url:
        report = await probe(url, key=KEY)
    assert report.exit_code is ExitCode.HTTP
    upgrade = step(report, "HTTP upgrade")
    assert "refused with 503 Service Unavailable" in upgrade
    assert "retry after 7 s (Retry-After)" in upgrade
    assert "server_error.upstream_unavailable" in upgrade
    assert "X-Request-Id: r503" in upgrade


async def test_redirect_is_reported_not_followed(serve: Serve) -> None:
    async with serve(redirects) as url:
        report = await probe(url, key=KEY)
    assert report.exit_code is ExitCode.HTTP
    upgrade = step(report, "HTTP upgrade")
    assert "refused with 301" in upgrade
    assert "do not follow redirects" in upgrade
    assert "Location: wss://elsewhere.example/v1/realtime" in upgrade


async def test_silence_after_101_times_out_without_session(serve: Serve) -> None:
    async with serve(silent) as url:
        report = await probe(url, key=KEY, timeout=0.5)
    assert report.exit_code is ExitCode.NO_SESSION
    assert "no session.created within the timeout" in step(report, "Session")


async def test_closed_port_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = await probe(f"ws://127.0.0.1:{port}/v1", key=KEY, timeout=5)
    assert report.exit_code is ExitCode.TCP
    assert f"127.0.0.1 port {port}: connection refused: nothing listens on this port" in step(
        report, "TCP"
    )
    assert "HTTP upgrade" not in report.text()


async def test_unresolvable_name() -> None:
    report = await probe("wss://nonexistent.invalid/v1", key=KEY, timeout=5)
    assert report.exit_code is ExitCode.DNS
    assert "the name nonexistent.invalid does not resolve" in step(report, "DNS")
    assert "TCP" not in report.text()


async def test_self_signed_certificate_is_named(
    serve: Serve, certificate: tuple[Path, Path]
) -> None:
    async with serve(healthy, ssl_context=server_context(certificate)) as url:
        report = await probe(url, key=KEY, timeout=5)
    assert report.exit_code is ExitCode.TLS
    assert report.observations.tls is not None
    assert report.observations.tls.verify_code == 18
    assert "the certificate was rejected: the certificate is self-signed" in step(report, "TLS")
    assert "TLS failed" in report.explanation.verdict


async def test_trusted_certificate_passes_and_the_session_opens(
    serve: Serve, certificate: tuple[Path, Path]
) -> None:
    async with serve(healthy, ssl_context=server_context(certificate)) as url:
        report = await probe(url, key=KEY, cafile=str(certificate[0]), quiet=0.2)
    assert report.exit_code is ExitCode.OK
    tls = step(report, "TLS")
    assert tls.startswith("✓ TLS: TLSv1.")
    assert "certificate for 127.0.0.1" in tls


async def test_hostname_mismatch_is_named(
    serve: Serve, wrong_host_certificate: tuple[Path, Path]
) -> None:
    async with serve(healthy, ssl_context=server_context(wrong_host_certificate)) as url:
        report = await probe(url, key=KEY, cafile=str(wrong_host_certificate[0]), timeout=5)
    assert report.exit_code is ExitCode.TLS
    assert "IP address mismatch" in step(report, "TLS")


async def test_wss_to_a_plain_port_says_it_is_not_tls(serve: Serve) -> None:
    async with serve(healthy) as url:
        report = await probe(url.replace("ws://", "wss://"), key=KEY, timeout=5)
    assert report.exit_code is ExitCode.TLS
    assert "does not speak TLS on this port" in step(report, "TLS")


async def test_json_report_holds_observations_without_the_key(serve: Serve) -> None:
    async with serve(refuses_401) as url:
        report = await probe(url, key=KEY, subprotocol_auth=True)
    document = json.loads(report.json())
    assert document["exit_code"] == ExitCode.HTTP
    assert document["observations"]["upgrade"]["status"] == 401
    assert document["observations"]["upgrade"]["error"]["code"] == "invalid_api_key"
    assert document["target"]["key"] == MASKED
    assert_no_secret(report)
