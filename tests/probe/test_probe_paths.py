"""A wrong path gets the right one suggested; a refusal says how an SDK shows its body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from rtrelay.mock import MockOptions, MockProvider
from rtrelay.probe import (
    DnsObservation,
    ErrorInfo,
    ExitCode,
    Observations,
    PathCheck,
    TcpAttempt,
    TcpObservation,
    UpgradeObservation,
    explain,
    plan,
    probe,
)
from support import RunningRelay, mock_channel_settings, running_relay, serving

DNS = DnsObservation(host="127.0.0.1", port=8080, literal=True)
TCP = TcpObservation(attempts=(TcpAttempt(address="127.0.0.1", port=8080, outcome="connected"),))
NOT_FOUND = UpgradeObservation(status=404, reason="Not Found", body="404: Not Found")


def _text(observations: Observations, url: str = "ws://127.0.0.1:8080/v2") -> tuple[str, str]:
    target, _ = plan(url)
    result = explain(target, observations)
    assert result.exit_code is ExitCode.HTTP
    details = "\n".join(line for step in result.steps for line in (step.text, *step.details))
    return details, result.verdict


def test_a_bare_404_with_a_found_endpoint_suggests_its_url_and_base_url() -> None:
    found = PathCheck(tried=("/v1/realtime",), found="ws://127.0.0.1:8080/v1/realtime")
    details, verdict = _text(Observations(dns=DNS, tcp=TCP, upgrade=NOT_FOUND, paths=found))
    assert "nothing is served at this path" in details
    assert (
        "this server answers as a Realtime endpoint at ws://127.0.0.1:8080/v1/realtime: use that "
        "URL, or ws://127.0.0.1:8080/v1 as an SDK's base URL"
    ) in details
    assert verdict.endswith(
        "the Realtime endpoint is ws://127.0.0.1:8080/v1/realtime "
        "(rtrelay probe ws://127.0.0.1:8080/v1)"
    )


def test_a_bare_404_with_nothing_found_says_which_paths_were_asked() -> None:
    nothing = PathCheck(tried=("/v1/realtime", "/realtime", "/openai/v1/realtime"))
    details, _ = _text(Observations(dns=DNS, tcp=TCP, upgrade=NOT_FOUND, paths=nothing))
    assert "nor does it answer at /v1/realtime, /realtime, /openai/v1/realtime" in details


def test_a_json_refusal_to_a_server_sdk_says_where_the_sdk_keeps_the_body() -> None:
    refused = UpgradeObservation(
        status=401,
        reason="Unauthorized",
        error=ErrorInfo(type="invalid_request_error", code="invalid_api_key", message="no"),
    )
    details, _ = _text(Observations(dns=DNS, tcp=TCP, upgrade=refused))
    assert "e.response.body" in details
    assert "unexpected-response" in details


@pytest.fixture
async def relay() -> AsyncIterator[RunningRelay]:
    async with (
        MockProvider(MockOptions(realtime_pacing=0)) as provider,
        running_relay(mock_channel_settings(provider.url, auth="none")) as running,
    ):
        yield running


async def test_a_misspelt_path_on_the_relay_finds_v1_realtime(relay: RunningRelay) -> None:
    report = await probe(relay.ws_url + "/v1/realtim", quiet=0.3)
    assert report.exit_code is ExitCode.HTTP
    assert report.observations.paths == PathCheck(
        tried=("/v1/realtime",), found=relay.ws_url + "/v1/realtime"
    )
    assert f"(rtrelay probe {relay.ws_url}/v1)" in report.text()
    # and the suggestion works
    assert (await probe(relay.ws_url + "/v1", quiet=0.3)).exit_code is ExitCode.OK


async def test_a_server_with_no_realtime_endpoint_is_not_credited_with_one() -> None:
    async def teapot(request: web.Request) -> web.Response:
        return web.Response(status=418 if request.path == "/realtime" else 404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", teapot)
    async with serving(app) as url:
        report = await probe("ws" + url.removeprefix("http") + "/v2", quiet=0.3)
    assert report.exit_code is ExitCode.HTTP
    paths = report.observations.paths
    assert paths is not None
    assert paths.found is None
    assert paths.tried == ("/v1/realtime", "/realtime", "/openai/v1/realtime")
