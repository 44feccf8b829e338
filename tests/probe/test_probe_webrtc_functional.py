"""``rtrelay probe --webrtc`` against the real relay and the real simulated provider's WebRTC
peer, all on 127.0.0.1 (no STUN): each step of a call's setup explained, and each refusal.

The probe's own peer is aiortc; the relay's call registry and the provider's call records
say what the probe did to them (one call, hung up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from calls.calls_rig import Rig, open_rig
from rtrelay.cli import probe as probe_cli
from rtrelay.edge.app import CALLS
from rtrelay.ledger.keys import KeySpec
from rtrelay.probe import ExitCode, ProbeReport, probe_webrtc

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as running:
        yield running


def cli() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtrelay")
    probe_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def steps(report: ProbeReport) -> dict[str, str]:
    return {step.name: step.mark for step in report.explanation.steps}


async def mint_token(rig: Rig) -> str:
    body = {"session": {"type": "realtime", "model": "gpt-realtime"}}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{rig.relay.url}/v1/realtime/client_secrets",
            json=body,
            headers={"Authorization": f"Bearer {rig.key}"},
        ) as resp:
            token: str = (await resp.json())["value"]
    return token


async def test_a_call_through_the_relay_is_explained_step_by_step_and_hung_up(rig: Rig) -> None:
    report = await probe_webrtc(rig.relay.url + "/v1", key=rig.key, timeout=10)
    text = report.text()
    print(text)  # the report's example output
    assert report.exit_code is ExitCode.OK, text
    assert steps(report) == {
        "DNS": "ok",
        "TCP": "ok",
        "TLS": "skip",
        "Offer": "ok",
        "SDP answer": "ok",
        "ICE": "ok",
        "DTLS": "ok",
        "Data channel": "ok",
        "Session": "ok",
        "Events": "ok",
        "Hangup": "ok",
    }
    offer = report.observations.offer
    assert offer is not None and offer.status == 201
    assert offer.request_id is not None and offer.request_id.startswith("req_")
    assert offer.headers["Location"].startswith("/v1/realtime/calls/rcall_")
    assert offer.sdp is not None and offer.sdp.candidates[0].startswith("udp 127.0.0.1:")
    assert "/v1/realtime/calls?model=gpt-realtime" in text
    assert "201 Created" in text and "X-Request-Id: req_" in text
    assert "DTLS fingerprint sha-256" in text
    assert "session.created" in report.explanation.verdict
    call = report.observations.call
    assert call is not None and call.session is not None
    created = call.session.session_created_ms
    assert created is not None and call.channel_ms is not None
    assert offer.elapsed_ms <= created
    assert call.hangup is not None and call.hangup.status == 200
    # The relay hung the provider's call up for the probe; nothing is left running.
    provider_call = rig.provider.calls[-1]
    assert provider_call.controls == ["hangup"]
    async with asyncio.timeout(10):
        await provider_call.ended.wait()
        while rig.relay.app[CALLS].calls:
            await asyncio.sleep(0.05)
    assert rig.key not in text and rig.key not in report.json()


async def test_an_ek_token_on_the_command_line_sets_a_call_up(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    token = await mint_token(rig)
    argv = ["probe", "--webrtc", rig.relay.url + "/v1", "--token", token, "--json"]
    args = cli().parse_args(argv)
    code = await asyncio.to_thread(args.func, args)
    out = capsys.readouterr().out
    assert code == 0, out
    document = json.loads(out)
    assert document["target"]["mode"] == "webrtc"
    assert document["observations"]["offer"]["status"] == 201
    assert document["observations"]["call"]["session"]["model"] == "gpt-realtime"
    assert token not in out


async def test_a_bad_key_is_a_401_explained(rig: Rig) -> None:
    report = await probe_webrtc(rig.relay.url + "/v1", key="rk_not_a_real_key_0123", timeout=10)
    text = report.text()
    assert report.exit_code is ExitCode.HTTP, text
    offer = report.observations.offer
    assert offer is not None and offer.status == 401
    assert offer.error is not None and offer.error.code == "invalid_api_key"
    assert "✗ Offer: refused with 401 Unauthorized" in text
    assert "X-Request-Id: req_" in text
    assert "what to do: the relay does not know this key" in text
    assert "(invalid_api_key)" in report.explanation.verdict
    assert report.observations.call is None
    assert rig.provider.calls == []


async def test_a_model_the_key_may_not_use_is_a_403_explained(rig: Rig) -> None:
    _, mini_only = await rig.relay.relay.parts.store.create_key(
        KeySpec(name="mini", models=("gpt-realtime-mini",))
    )
    report = await probe_webrtc(
        rig.relay.url + "/v1", key=mini_only, model="gpt-realtime", timeout=10
    )
    text = report.text()
    assert report.exit_code is ExitCode.HTTP, text
    assert "refused with 403 Forbidden" in text
    assert "error invalid_request_error.model_not_allowed" in text
    assert "what to do: this key may not use this model" in text
    assert rig.provider.calls == []


async def test_a_provider_refusing_the_offer_keeps_its_status_and_body_explained(
    rig: Rig,
) -> None:
    body = '{"error": {"code": "offer_refused_here", "message": "no calls today"}}'
    rig.provider.options = replace(rig.provider.options, refuse_status=400, refuse_body=body)
    through = await probe_webrtc(rig.relay.url + "/v1", key=rig.key, timeout=10)
    text = through.text()
    assert through.exit_code is ExitCode.HTTP, text
    assert "refused with 502 Bad Gateway" in text
    # the provider's status and body, kept in the relay's upstream_rejected message
    assert "HTTP 400" in text and "no calls today" in text
    assert "what to do: the relay reached the provider, which refused" in text
    # and straight to the provider, the status and body as they are
    direct = await probe_webrtc(rig.provider.url, key="sk-test", timeout=10)
    text = direct.text()
    assert direct.exit_code is ExitCode.HTTP, text
    assert "refused with 400 Bad Request" in text
    assert "error ?.offer_refused_here: no calls today" in text


async def test_a_relay_that_is_down_is_a_refused_connection_explained() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = await probe_webrtc(f"http://127.0.0.1:{port}/v1", key="rk_x", timeout=5)
    text = report.text()
    assert report.exit_code is ExitCode.TCP, text
    assert "connection refused: nothing listens on this port" in text
    assert report.observations.offer is None


def test_browser_websocket_options_are_a_usage_error_with_webrtc(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = cli()
    args = parser.parse_args(["probe", "--webrtc", "http://127.0.0.1:1/v1", "--beta"])
    assert args.func(args) == 2
    assert "drop --subprotocol-auth and --beta" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["probe", "http://h/v1", "--key", "a", "--token", "b"])
