"""Shared test helpers: run real servers on 127.0.0.1 ephemeral ports."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import web

from rtrelay import config
from rtrelay.edge.app import RELAY, create_app
from rtrelay.edge.relay import Relay
from rtrelay.edge.server import Protections, listen

_STORES = tempfile.TemporaryDirectory(prefix="rtrelay-test-stores-")
"""Parent of every throw-away store; removed when the test process exits."""


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1:0 and yield ``http://127.0.0.1:<port>``.

    Served as ``rtrelay serve`` serves (``edge.server.listen``): a relay app with its own
    settings and metrics, any other app with the default protections.
    """
    relay = app.get(RELAY)
    protections = Protections.from_settings(
        relay.settings if relay is not None else config.Settings(),
        relay.metrics if relay is not None else None,
    )
    runner = await listen(app, host="127.0.0.1", port=0, protections=protections)
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class RunningRelay:
    def __init__(self, url: str, app: web.Application) -> None:
        self.url = url
        self.ws_url = "ws" + url[len("http") :]
        self.app = app

    @property
    def relay(self) -> Relay:
        return self.app[RELAY]

    def realtime(self, model: str = "gpt-realtime", path: str = "/v1/realtime") -> str:
        return f"{self.ws_url}{path}?model={model}"


def settings_for(
    upstream_base: str | None = None,
    *,
    channels: list[dict[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
    **sections: Any,
) -> config.Settings:
    """Settings for a test relay: auth off and a throw-away SQLite store unless given."""
    store = {"url": f"sqlite+aiosqlite:///{tempfile.mkdtemp(dir=_STORES.name)}/relay.db"}
    raw: dict[str, Any] = {"auth": {"mode": "none"}, "store": store, **sections}
    if channels is None:
        assert upstream_base is not None
        channels = [
            {
                "name": "primary",
                "kind": "openai",
                "base_url": upstream_base,
                "api_key_env": "TEST_PROVIDER_KEY",
                "models": ["gpt-realtime"],
                "shapes": ["ga", "beta"],
            }
        ]
    raw["channels"] = channels
    return config.from_mapping(raw, environ or {})


@contextlib.asynccontextmanager
async def running_relay(
    settings: config.Settings, environ: Mapping[str, str] | None = None
) -> AsyncIterator[RunningRelay]:
    env = {"TEST_PROVIDER_KEY": "sk-test-provider-secret-0123456789", **(environ or {})}
    app = await create_app(settings, environ=env)
    async with serving(app) as url:
        yield RunningRelay(url, app)


async def read_error_and_close(
    ws: aiohttp.ClientWebSocketResponse[Any],
) -> tuple[dict[str, Any] | None, int | None, str]:
    """Read until close; return the last ``error`` event, the close code and reason."""
    error = None
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type is aiohttp.WSMsgType.TEXT:
            import orjson

            event = orjson.loads(msg.data)
            if event.get("type") == "error":
                error = event
        elif msg.type is aiohttp.WSMsgType.CLOSE:
            return error, msg.data, msg.extra or ""
        elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return error, ws.close_code, ""
        elif msg.type is aiohttp.WSMsgType.ERROR:
            return error, ws.close_code, str(msg.data)


class ScriptedUpstream:
    """A minimal provider stand-in whose behaviour the client scripts with JSON events.

    ``{"type":"x.close","code":C,"reason":R}`` closes with that code; ``{"type":"x.drop"}``
    aborts the TCP connection; ``{"type":"x.stream","n":N,"size":S}`` sends N text frames
    of S bytes as fast as it can; anything else is echoed (text and binary alike).
    """

    def __init__(self) -> None:
        self.handshakes: list[dict[str, str]] = []
        self.closes: list[tuple[int | None, str]] = []
        self.refuse: tuple[int, bytes] | None = None
        self.stall: float | None = None
        self.app = web.Application()
        self.app.router.add_get("/v1/realtime", self._handle)
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        import asyncio

        self.handshakes.append(dict(request.headers))
        if self.stall is not None:
            await asyncio.sleep(self.stall)
        if self.refuse is not None:
            status, body = self.refuse
            return web.Response(status=status, body=body, content_type="application/json")
        ws = web.WebSocketResponse(autoclose=False, max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str('{"type":"session.created","event_id":"event_1","session":{}}')
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                text: str = msg.data
                command = _command(text)
                if command.get("type") == "x.close":
                    await ws.close(code=command["code"], message=command["reason"].encode())
                    break
                if command.get("type") == "x.drop":
                    assert request.transport is not None
                    request.transport.abort()
                    break
                if command.get("type") == "x.stream":
                    chunk = (
                        '{"type":"response.output_audio.delta","delta":"'
                        + "A" * command["size"]
                        + '"}'
                    )
                    for _ in range(command["n"]):
                        await ws.send_str(chunk)
                    continue
                await ws.send_str(text)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                self.closes.append((msg.data, msg.extra or ""))
                await ws.close()
                break
            else:
                self.closes.append((None, "dropped"))
                break
        return ws


def _command(text: str) -> dict[str, Any]:
    """The scripted upstream's command in a client frame, if it is one."""
    try:
        event = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(event, dict) and str(event.get("type", "")).startswith("x."):
        return event
    return {}


@contextlib.asynccontextmanager
async def scripted_upstream() -> AsyncIterator[ScriptedUpstream]:
    upstream = ScriptedUpstream()
    async with serving(upstream.app) as url:
        upstream.url = "ws" + url[len("http") :] + "/v1"
        yield upstream


def mock_channel_settings(
    provider_url: str,
    *,
    auth: str = "keys",
    models: Sequence[str] = ("gpt-realtime", "gpt-realtime-mini"),
    **sections: Any,
) -> config.Settings:
    """A relay in front of one simulated provider run by the test (so it can inspect it)."""
    return settings_for(
        channels=[
            {
                "name": "sim",
                "kind": "openai",
                "base_url": provider_url,
                "api_key_env": "TEST_PROVIDER_KEY",
                "models": list(models),
                "shapes": ["ga", "beta"],
            }
        ],
        auth={"mode": auth},
        **sections,
    )


def upgrade_headers(**extra: str) -> dict[str, str]:
    """Headers of a WebSocket upgrade, for testing the HTTP answer to one."""
    return {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        **extra,
    }


def free_port() -> int:
    """A port nothing listens on right now (for "unreachable" targets and subprocesses)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def serve_process(
    *args: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    nofile: int | None = None,
) -> AsyncIterator[tuple[Any, int]]:
    """Run ``rtrelay serve ARGS --port P`` as a real process; yield it once it answers.

    ``nofile``: run it under ``ulimit -n nofile`` (the shell execs it: same pid).
    """
    import asyncio
    import os
    import sys

    port = port or free_port()
    limit = ("sh", "-c", f'ulimit -n {int(nofile)} && exec "$@"', "sh") if nofile else ()
    proc = await asyncio.create_subprocess_exec(
        *limit,
        sys.executable,
        "-m",
        "rtrelay.cli.main",
        "serve",
        *args,
        "--port",
        str(port),
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    assert proc.returncode is None, "rtrelay serve exited during start-up"
                    await asyncio.sleep(0.1)
        yield proc, port
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def write_config(
    path: Path, provider_url: str, db: Path, *, auth: str, drain: float = 30.0
) -> Path:
    """A config file for ``rtrelay serve``: one ``openai`` channel, a SQLite store."""
    path.write_text(
        f"""
[auth]
mode = "{auth}"
[timeouts]
drain = {drain}
[store]
url = "sqlite+aiosqlite:///{db}"
[logging]
level = "WARNING"
[[channels]]
name = "sim"
kind = "openai"
base_url = "{provider_url}"
models = ["gpt-realtime"]
"""
    )
    return path


@dataclass(slots=True)
class Demo:
    """A running ``rtrelay serve --demo`` and what its banner said.

    Attributes:
        banner: everything it printed on stdout up to and with the ``Ctrl-C`` line.
        key: the demo key; admin_token: the console's token when the demo made one up.
        log: its stderr (``demo.log`` in ``cwd``).
    """

    process: asyncio.subprocess.Process
    banner: str
    key: str
    admin_token: str | None
    port: int
    cwd: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def line(self, label: str) -> str:
        """The rest of the banner line labelled ``label`` (``try it``, ``endpoint``…)."""
        match = re.search(rf"^  {label}\s+(.+)$", self.banner, re.MULTILINE)
        assert match is not None, label
        return match.group(1)

    def block(self, start: str, end: str) -> str:
        """The indented code between the lines starting ``start`` and ``end``, dedented."""
        lines = self.banner.splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith(start))
        last = next(i for i, line in enumerate(lines) if i > first and line.startswith(end))
        body = [line for line in lines[first + 1 : last] if line.startswith("    ") or not line]
        return textwrap.dedent("\n".join(body)).strip() + "\n"


DEMO_COMMAND: Final = (sys.executable, "-m", "rtrelay.cli.main")


@contextlib.asynccontextmanager
async def demo_process(
    command: Sequence[str] = DEMO_COMMAND,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> AsyncIterator[Demo]:
    """Run ``COMMAND serve --demo --port P`` in ``cwd``; yield it once its banner is out.

    ``command`` is how rtrelay is run (this interpreter by default, or a venv's
    ``rtrelay`` script); ``env`` its whole environment (default: ours). Leaving the block
    stops it with SIGTERM (SIGKILL after 30 s); ``demo.process.returncode`` is then its
    exit status.
    """
    port = free_port()
    log = cwd / "demo.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *command,
            "serve",
            "--demo",
            "--port",
            str(port),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert proc.stdout is not None
        banner = ""
        async with asyncio.timeout(timeout):
            while "Ctrl-C" not in banner:
                line = await proc.stdout.readline()
                assert line, f"rtrelay serve --demo exited: {log.read_text()[-2000:]}"
                banner += line.decode()
        key = re.search(r"demo key\s+(rk_\S+)", banner)
        assert key is not None, banner
        token = re.search(r"admin token (\S+)", banner)
        yield Demo(proc, banner, key.group(1), token and token.group(1), port, cwd, log)
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            async with asyncio.timeout(30):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
