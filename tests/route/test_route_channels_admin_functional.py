"""Channel health as operators see it: ``GET /admin/v1/channels`` and ``rtrelay channels``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from route_helpers import ADMIN_TOKEN, closed_port_url, first_event, openai_channel, pin_cooldowns

from rtrelay.cli.channels import ChannelsError, fetch_channels, render_channels, report
from rtrelay.cli.main import main
from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, running_relay, settings_for

FAST = MockOptions(realtime_pacing=0)
TOKEN_ENV = "RTRELAY_ROUTE_TEST_ADMIN_TOKEN"


@contextlib.asynccontextmanager
async def relay_with_history() -> AsyncIterator[RunningRelay]:
    """Channels ``flaky`` (refuses 500, priority 0), ``good`` and ``dead`` (a closed port).

    Two sessions have failed over from ``flaky`` to ``good``; ``dead`` was never tried.
    """
    async with (
        MockProvider(MockOptions(refuse_status=500)) as flaky,
        MockProvider(FAST) as good,
    ):
        settings = settings_for(
            channels=[
                openai_channel("flaky", flaky, priority=0),
                openai_channel("good", good, priority=1),
                openai_channel("dead", closed_port_url(), priority=2),
            ],
            admin={"token_env": TOKEN_ENV},
        )
        async with running_relay(settings, environ={TOKEN_ENV: ADMIN_TOKEN}) as relay:
            pin_cooldowns(relay, 60.0)
            async with aiohttp.ClientSession() as http:
                for _ in range(2):
                    async with http.ws_connect(relay.realtime()) as ws:
                        assert (await first_event(ws))["type"] == "session.created"
            yield relay


async def get_channels(relay: RunningRelay, token: str | None) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(relay.url + "/admin/v1/channels", headers=headers) as resp,
    ):
        return resp.status, await resp.json()


def by_name(channels: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in channels}


async def test_admin_channels_shows_state_success_rate_latency_and_last_error() -> None:
    async with relay_with_history() as relay:
        status, body = await get_channels(relay, ADMIN_TOKEN)
        assert status == 200
        channels = by_name(body["data"])
        assert list(channels) == ["flaky", "good", "dead"]  # config order

        flaky = channels["flaky"]
        assert (flaky["state"], flaky["recent_success_rate"]) == ("closed", 0.0)
        assert (flaky["consecutive_failures"], flaky["recent_attempts"]) == (2, 2)
        assert flaky["last_error"].startswith("refused:500")
        assert flaky["dial_latency_p50_ms"] is None  # only completed handshakes are timed

        good = channels["good"]
        assert (good["state"], good["recent_success_rate"], good["recent_attempts"]) == (
            "closed",
            1.0,
            2,
        )
        assert 0 < good["dial_latency_p50_ms"] <= good["dial_latency_p99_ms"] < 10_000
        assert good["last_error"] is None
        assert good["models"] == {"gpt-realtime": "gpt-realtime"}
        assert (good["kind"], good["priority"], good["weight"]) == ("openai", 1, 1)

        dead = channels["dead"]
        assert (dead["state"], dead["recent_success_rate"], dead["last_error"]) == (
            "closed",
            None,
            None,
        )

        # A third failure opens flaky's circuit; the listing says so and when it may retry.
        async with aiohttp.ClientSession() as http, http.ws_connect(relay.realtime()) as ws:
            await first_event(ws)
        _, body = await get_channels(relay, ADMIN_TOKEN)
        flaky = by_name(body["data"])["flaky"]
        assert flaky["state"] == "open"
        assert 0 < flaky["retry_after_s"] <= 60
        serialized = json.dumps(body)
        assert "sk-test-provider-secret" not in serialized  # no provider key, ever


async def test_admin_channels_needs_the_admin_token() -> None:
    async with relay_with_history() as relay:
        status, body = await get_channels(relay, None)
        assert (status, body["error"]["code"]) == (401, "missing_api_key")
        status, body = await get_channels(relay, "wrong-token")
        assert (status, body["error"]["code"]) == (401, "invalid_api_key")


async def test_cli_report_table_and_json() -> None:
    async with relay_with_history() as relay:
        table = await report(relay.url, ADMIN_TOKEN, "table")
        header, *rows = table.splitlines()
        assert header.split()[:4] == ["NAME", "KIND", "STATE", "SUCCESS"]
        assert "LAST ERROR" in header
        rows_by_name = {r.split()[0]: r for r in rows}
        assert list(rows_by_name) == ["flaky", "good", "dead"]
        assert rows_by_name["flaky"].split()[1:4] == ["openai", "closed", "0.0%"]
        assert "refused:500" in rows_by_name["flaky"]
        assert rows_by_name["good"].split()[1:4] == ["openai", "closed", "100.0%"]
        assert rows_by_name["dead"].split()[3] == "-"  # no attempts yet

        data = json.loads(await report(relay.url + "/", ADMIN_TOKEN, "json"))["data"]
        assert [c["name"] for c in data] == ["flaky", "good", "dead"]
        assert data[1]["recent_success_rate"] == 1.0


async def test_cli_errors_for_a_wrong_token_and_an_unreachable_relay() -> None:
    async with relay_with_history() as relay:
        with pytest.raises(ChannelsError, match="refused the admin token") as raised:
            await fetch_channels(relay.url, "wrong-token")
        assert "wrong-token" not in str(raised.value)
    with pytest.raises(ChannelsError, match="cannot reach the relay"):
        await fetch_channels(closed_port_url().replace("ws://", "http://"), ADMIN_TOKEN)


async def test_cli_command_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # main() runs its own event loop, so it runs in a thread beside the test's loop.
    async with relay_with_history() as relay:
        monkeypatch.setenv(TOKEN_ENV, ADMIN_TOKEN)
        argv = ["channels", "--url", relay.url, "--token-env", TOKEN_ENV, "--format", "json"]
        assert await asyncio.to_thread(main, argv) == 0
        out = capsys.readouterr().out
        assert [c["name"] for c in json.loads(out)["data"]] == ["flaky", "good", "dead"]

        monkeypatch.setenv(TOKEN_ENV, "wrong-token")
        assert await asyncio.to_thread(main, argv) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "refused the admin token" in captured.err
        assert "wrong-token" not in captured.err

        monkeypatch.delenv(TOKEN_ENV)
        assert await asyncio.to_thread(main, argv) == 1
        assert f"set {TOKEN_ENV}" in capsys.readouterr().err

    monkeypatch.setenv(TOKEN_ENV, ADMIN_TOKEN)
    unreachable = closed_port_url().replace("ws://", "http://")
    argv = ["channels", "--url", unreachable, "--token-env", TOKEN_ENV]
    assert await asyncio.to_thread(main, argv) == 1
    assert "cannot reach the relay" in capsys.readouterr().err


async def test_cli_as_a_process_against_a_running_relay() -> None:
    async with relay_with_history() as relay:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rtrelay.cli.main",
            "channels",
            "--url",
            relay.url,
            "--token-env",
            TOKEN_ENV,
            env={TOKEN_ENV: ADMIN_TOKEN, "PATH": "/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(20):
            out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        lines = out.decode().splitlines()
        assert lines[0].startswith("NAME")
        assert [line.split()[0] for line in lines[1:]] == ["flaky", "good", "dead"]


def test_render_marks_open_circuits_with_their_retry_time_and_trims_long_errors() -> None:
    table = render_channels(
        [
            {
                "name": "c",
                "kind": "azure",
                "state": "open",
                "retry_after_s": 12.4,
                "recent_success_rate": 0.25,
                "recent_attempts": 4,
                "dial_latency_p50_ms": 12.345,
                "dial_latency_p99_ms": 80.0,
                "last_error": "refused:401: " + "x" * 200,
            }
        ],
        "table",
    )
    row = table.splitlines()[1]
    assert "open (12s)" in row and "25.0%" in row and "12.3" in row and "80.0" in row
    assert len(row) < 200 and row.endswith("…")
