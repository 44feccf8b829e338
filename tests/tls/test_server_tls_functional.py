"""``[server] tls_cert``/``tls_key``: rtrelay serves https:// and wss:// itself, and SIGHUP
puts a new certificate in front of new connections without touching live sessions."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from tls_helpers import (
    MODEL,
    Pki,
    ServeProcess,
    der_sha256,
    serve_tls_process,
    served_certificate,
)


async def _talk(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    """One text response on an open session; the event types seen up to response.done."""
    await ws.send_json(
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}
    )
    await ws.send_json({"type": "response.create"})
    seen: list[str] = []
    async with asyncio.timeout(20):
        while "response.done" not in seen:
            seen.append((await ws.receive_json())["type"])
    return seen


async def test_a_session_open_across_a_sighup_keeps_its_certificate_and_new_ones_get_the_new(
    pki: Pki,
) -> None:
    first = pki.issue()
    context = pki.client_context()
    async with serve_tls_process(pki.relay_config(), context) as relay:
        assert await served_certificate(relay.port, context) == first
        url = f"wss://127.0.0.1:{relay.port}/v1/realtime?model={MODEL}"
        async with aiohttp.ClientSession() as http, http.ws_connect(url, ssl=context) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            transport = ws._response.connection.transport  # type: ignore[union-attr]
            peer = transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
            assert der_sha256(peer) == first

            second = pki.issue()  # same paths, new certificate and key
            relay.proc.send_signal(signal.SIGHUP)
            await relay.wait_for_log('"event":"tls_reloaded"')

            assert await served_certificate(relay.port, context) == second
            assert "response.done" in await _talk(ws)  # the live session goes on
            await ws.close()
        assert relay.proc.returncode is None
    assert relay.proc.returncode == 0


async def test_a_reload_of_broken_files_keeps_the_certificate_served(
    pki: Pki, tmp_path: Path
) -> None:
    first = pki.issue()
    context = pki.client_context()
    async with serve_tls_process(pki.relay_config(), context) as relay:
        pki.issue(tmp_path / "other.pem", pki.key)  # a key that does not match cert.pem
        relay.proc.send_signal(signal.SIGHUP)
        await relay.wait_for_log('"event":"tls_reload_failed"')
        assert await served_certificate(relay.port, context) == first
        failed = next(json.loads(line) for line in relay.log if "tls_reload_failed" in line)
        assert "KEY_VALUES_MISMATCH" in failed["message"]


@pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT workers")
async def test_with_workers_the_master_passes_sighup_on_and_every_worker_reloads(pki: Pki) -> None:
    pki.issue()
    context = pki.client_context()
    async with serve_tls_process(pki.relay_config(), context, "--workers", "2") as relay:
        await relay.wait_for_log('"event":"listening"', count=2)
        second = pki.issue()
        relay.proc.send_signal(signal.SIGHUP)
        await relay.wait_for_log('"event":"tls_reloaded"', count=2)
        seen = {await served_certificate(relay.port, context) for _ in range(12)}
        assert seen == {second}
    assert not [line for line in relay.log if "worker_died" in line]


async def test_sighups_while_workers_start_neither_kill_them_nor_get_lost(pki: Pki) -> None:
    """A worker ignores SIGHUP from its first line, and the master only passes SIGHUP on
    to workers that have said so: before that, SIGHUP's default action would kill them."""
    pki.issue()
    context = pki.client_context()

    async def keep_sending(relay: ServeProcess) -> None:
        await relay.wait_for_log('"event":"store"')  # the master ignores SIGHUP from here on
        while relay.proc.returncode is None:
            relay.proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.02)

    async with serve_tls_process(
        pki.relay_config(), context, "--workers", "2", meanwhile=keep_sending
    ) as relay:
        await relay.wait_for_log('"event":"listening"', count=2)
        second = pki.issue()
        await relay.wait_for_log('"message":"tls certificate reloaded"', count=2)
        assert {await served_certificate(relay.port, context) for _ in range(8)} == {second}
    assert not [line for line in relay.log if "worker_died" in line], "".join(relay.log)


@pytest.mark.parametrize("broken", ["tls_cert", "ca_file"])
async def test_serve_refuses_to_start_on_a_file_it_cannot_load(
    pki: Pki, tmp_path: Path, broken: str
) -> None:
    pki.issue()
    config_file = pki.relay_config()
    text = config_file.read_text()
    if broken == "tls_cert":
        text = text.replace(str(pki.cert), str(tmp_path / "nowhere.pem"))
        expected = f"rtrelay: server.tls_cert {tmp_path / 'nowhere.pem'}: cannot read it"
    else:
        text += (
            '\n[[channels]]\nname = "private"\nbase_url = "wss://127.0.0.1:9/v1"\n'
            f'models = ["x"]\nca_file = "{pki.cert.with_name("no-ca.pem")}"\n'
        )
        expected = "rtrelay: channel 'private': ca_file "
    config_file.write_text(text)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtrelay.cli.main",
        "serve",
        "--config",
        str(config_file),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert expected in err.decode()
