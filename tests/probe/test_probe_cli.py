"""``rtrelay probe`` on the command line: output, --json, exit codes, no key in clear."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

import pytest
from aiohttp import web
from probe_helpers import KEY, Serve, session_created

from rtrelay.cli import probe as probe_cli
from rtrelay.errors import InvalidApiKey

pytestmark = pytest.mark.timeout(30)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rtrelay")
    probe_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["probe", *argv])


async def run(argv: list[str]) -> int:
    """The command runs its own event loop (asyncio.run), so it runs in a thread here."""
    args = parse(argv)
    code: int = await asyncio.to_thread(args.func, args)
    return code


async def healthy(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("realtime",))
    await ws.prepare(request)
    await ws.send_json(session_created())
    async for _ in ws:
        pass
    return ws


async def refuses_401(request: web.Request) -> web.Response:
    return web.json_response(InvalidApiKey().to_http_body(), status=401)


def test_options_reach_the_probe() -> None:
    argv = ["ws://h/v1", "--key", KEY, "--model", "m", "--origin", "https://o"]
    argv += ["--subprotocol-auth", "--beta", "--timeout", "3", "--events", "2", "--json"]
    args = parse(argv)
    assert (args.key, args.model, args.origin) == (KEY, "m", "https://o")
    assert args.subprotocol_auth
    assert args.beta
    assert args.json
    assert (args.timeout, args.events) == (3.0, 2)


async def test_healthy_session_exits_0_with_text_report(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(healthy) as url:
        code = await run([url, "--key", KEY, "--subprotocol-auth", "--events", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "✓ Subprotocol: the server echoed 'realtime'" in out
    assert "✓ Verdict: a session was established" in out
    assert KEY not in out
    assert "rk_li…xy" in out


async def test_refusal_exits_6_and_json_has_the_observations(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(refuses_401) as url:
        code = await run([url, "--key", KEY, "--json"])
    out = capsys.readouterr().out
    assert code == 6
    document = json.loads(out)
    assert document["exit_code"] == 6
    assert document["observations"]["upgrade"]["status"] == 401
    assert any(step["name"] == "HTTP upgrade" for step in document["steps"])
    assert KEY not in out


async def test_closed_port_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = await run([f"ws://127.0.0.1:{port}", "--timeout", "5"])
    assert code == 4
    assert "connection refused" in capsys.readouterr().out


async def test_bad_url_exits_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    code = await run(["ftp://example.com/v1"])
    captured = capsys.readouterr()
    assert code == 2
    assert "must start with ws://, wss://, http:// or https://" in captured.err
