"""deploy/nginx/nginx.conf, run by real nginx in front of two real relays: it carries
WebSocket sessions (the openai SDK), hides /metrics, and sends a session refused by a
draining relay (503 relay_shutting_down) to the other relay instead of to the client.

Only the addresses change: compose's relay-1/relay-2 and port 8080 become loopback ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from deploy_recipes import DEPLOY
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from rtrelay.bench._nginx import find_nginx
from rtrelay.edge.app import RELAY
from support import RunningRelay, running_relay, settings_for

CONF = DEPLOY / "nginx" / "nginx.conf"
RELAYS = ("relay-1", "relay-2")
MODEL = "gpt-realtime"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_of(relay: RunningRelay) -> int:
    return int(relay.url.rsplit(":", 1)[1].split("/")[0])


def local_conf(relays: list[RunningRelay], port: int) -> str:
    text = CONF.read_text()
    assert "listen 8080;" in text
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    for name, relay in zip(RELAYS, relays, strict=True):
        assert f"server {name}:8080 " in text
        text = text.replace(f"server {name}:8080 ", f"server 127.0.0.1:{port_of(relay)} ")
    return text


def nginx_prefix(conf: str) -> Path:
    """A folder for nginx: its config, logs and temporary files."""
    prefix = Path(tempfile.mkdtemp(prefix="rtrelay-nginx-"))
    prefix.chmod(0o755)  # nginx's workers drop to an unprivileged user when run as root
    (prefix / "logs").mkdir()
    (prefix / "nginx.conf").write_text(conf)
    return prefix


@contextlib.asynccontextmanager
async def nginx_in_front(relays: list[RunningRelay]) -> AsyncIterator[str]:
    binary = find_nginx()
    if binary is None:
        pytest.skip("nginx is not installed (Debian package nginx)")
    port = free_port()
    prefix = nginx_prefix(local_conf(relays, port))
    process = await asyncio.create_subprocess_exec(
        binary,
        "-p",
        str(prefix),
        "-e",
        "stderr",
        "-c",
        str(prefix / "nginx.conf"),
        "-g",
        f"daemon off; pid {prefix}/nginx.pid;",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(15):
            while True:
                if process.returncode is not None:
                    assert process.stderr
                    pytest.fail(f"nginx exited: {(await process.stderr.read()).decode()}")
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                await asyncio.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture
async def two_relays() -> AsyncIterator[list[RunningRelay]]:
    channels = [{"name": "sim", "kind": "mock", "models": [MODEL]}]
    async with (
        running_relay(settings_for(channels=channels)) as one,
        running_relay(settings_for(channels=channels)) as two,
    ):
        yield [one, two]


async def handshake_outcomes(relay: RunningRelay) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(f"{relay.url}/metrics") as response:
        text = await response.text()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "rtrelay_handshakes"]
    return {s.labels["outcome"]: s.value for s in family.samples if s.name.endswith("_total")}


async def test_sessions_go_through_and_metrics_stay_inside(two_relays: list[RunningRelay]) -> None:
    async with nginx_in_front(two_relays) as address:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{address}/nginx-health") as response:
                assert response.status == 200
            async with http.get(f"http://{address}/metrics") as response:
                assert response.status == 404
            async with http.get(f"http://{address}/healthz") as response:
                assert response.status == 200 and (await response.json())["status"] == "ok"
        client = AsyncOpenAI(api_key="unused", websocket_base_url=f"ws://{address}/v1")
        async with client.realtime.connect(model=MODEL) as connection:
            event = await connection.recv()
            assert event.type == "session.created"
            await connection.session.update(session={"type": "realtime", "instructions": "hi"})
            event = await connection.recv()
            assert event.type == "session.updated"
    served = [await handshake_outcomes(r) for r in two_relays]
    assert sum(s.get("success", 0) for s in served) == 1


async def test_a_draining_relays_refusal_is_retried_on_the_other(
    two_relays: list[RunningRelay],
) -> None:
    draining, other = two_relays
    await draining.app[RELAY].drain(1.0)  # no live session: refuses new ones from now on
    attempts = 6
    async with nginx_in_front(two_relays) as address, aiohttp.ClientSession() as http:
        for _ in range(attempts):
            url = f"ws://{address}/v1/realtime?model={MODEL}"
            headers = {"Authorization": "Bearer unused"}  # a server client: refusals are HTTP
            async with http.ws_connect(url, headers=headers) as ws:
                assert (await ws.receive_json())["type"] == "session.created"
    refused = (await handshake_outcomes(draining)).get("relay_shutting_down", 0)
    assert refused >= 1, "nginx never tried the draining relay: the test proves nothing"
    assert (await handshake_outcomes(other)).get("success", 0) == attempts
