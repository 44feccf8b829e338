"""Real SDKs over wss:// to rtrelay with a test CA, and a channel behind a private CA.

The ``openai`` Node SDK's ``OpenAIRealtimeWS`` always dials ``wss://`` (it rewrites the
scheme), so before rtrelay served TLS itself it could not reach it without a patch. It
runs here unpatched, trusting the test CA through ``NODE_EXTRA_CA_CERTS``, as a user
would. The npm packages are installed once into a cache beside the virtualenv.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from tls_helpers import MODEL, Pki, serve_tls_process, tls_front

from rtrelay.mock import MockOptions, MockProvider
from support import running_relay, settings_for, upgrade_headers

OPENAI_NODE: Final = "7.55.0"
WS_NODE: Final = "8.23.0"
NODE_CACHE: Final = (
    Path(__file__).resolve().parents[2]
    / ".venv"
    / "node-sdk"
    / f"openai-{OPENAI_NODE}-ws-{WS_NODE}"
)

NODE_SESSION: Final = """\
import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";

const client = new OpenAI({ apiKey: "unused-auth-is-off", baseURL: process.env.RELAY });
const rt = new OpenAIRealtimeWS({ model: "gpt-realtime" }, client);
const seen = [];
let text = "";
const done = (code) => {
  console.log(JSON.stringify({ seen, text, url: rt.url.toString() }));
  process.exit(code);
};
rt.on("error", (err) => { console.error("error:", err.message); done(1); });
rt.on("event", (event) => seen.push(event.type));
rt.socket.on("open", () => {
  rt.send({ type: "session.update", session: { type: "realtime", output_modalities: ["text"] } });
  rt.send({ type: "conversation.item.create", item: { type: "message", role: "user",
    content: [{ type: "input_text", text: "Say hello!" }] } });
  rt.send({ type: "response.create" });
});
rt.on("response.output_text.delta", (event) => { text += event.delta; });
rt.on("response.done", () => rt.close());
rt.socket.on("close", () => done(seen.includes("response.done") ? 0 : 2));
setTimeout(() => { console.error("no response.done within 20 s"); done(3); }, 20000);
"""

PYTHON_SESSION: Final = """\
import asyncio, json, os, sys
from openai import AsyncOpenAI

async def main():
    client = AsyncOpenAI(api_key="unused-auth-is-off", websocket_base_url=sys.argv[1])
    seen, text = [], ""
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.conversation.item.create(item={"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Say hello!"}]})
        await conn.response.create()
        async for event in conn:
            seen.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.done":
                break
    print(json.dumps({"seen": seen, "text": text}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    """``node_modules`` with the pinned ``openai`` and ``ws``, installed once."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("RTRELAY_TEST_NODE") == "0":
            pytest.skip("RTRELAY_TEST_NODE=0")
        pytest.fail("node and npm are missing: scripts/bootstrap --test installs Debian's nodejs")
    modules = NODE_CACHE / "node_modules"
    if not (modules / "openai" / "package.json").exists():
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(NODE_CACHE),
                "--no-audit",
                "--no-fund",
                "--silent",
                f"openai@{OPENAI_NODE}",
                f"ws@{WS_NODE}",
            ],
            check=True,
            timeout=300,
        )
    installed = json.loads((modules / "openai" / "package.json").read_text())["version"]
    assert installed == OPENAI_NODE
    return modules


async def _run(*args: str, env: dict[str, str], cwd: Path) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}: {err.decode()}{out.decode()}"
    result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_the_openai_node_sdk_unpatched_completes_a_session_over_wss(
    node_sdk: Path, pki: Pki, tmp_path: Path
) -> None:
    pki.issue()
    (tmp_path / "node_modules").symlink_to(node_sdk)
    (tmp_path / "session.mjs").write_text(NODE_SESSION)
    async with serve_tls_process(pki.relay_config(), pki.client_context()) as relay:
        result = await _run(
            "node",
            "session.mjs",
            cwd=tmp_path,
            env={
                "RELAY": f"https://127.0.0.1:{relay.port}/v1",
                "NODE_EXTRA_CA_CERTS": str(pki.ca_file),
            },
        )
    assert result["url"] == f"wss://127.0.0.1:{relay.port}/v1/realtime?model={MODEL}"
    seen = result["seen"]
    assert isinstance(seen, list)
    assert seen[0] == "session.created"
    assert seen[-1] == "response.done"
    assert result["text"]


async def test_the_openai_python_sdk_completes_a_session_over_wss_with_ssl_cert_file(
    pki: Pki, tmp_path: Path
) -> None:
    pki.issue()
    script = tmp_path / "session.py"
    script.write_text(PYTHON_SESSION)
    async with serve_tls_process(pki.relay_config(), pki.client_context()) as relay:
        result = await _run(
            sys.executable,
            str(script),
            f"wss://127.0.0.1:{relay.port}/v1",
            cwd=tmp_path,
            env={"SSL_CERT_FILE": str(pki.ca_file)},
        )
    seen = result["seen"]
    assert isinstance(seen, list)
    assert seen[0] == "session.created"
    assert seen[-1] == "response.done"
    assert result["text"]


def _provider_channel(front_port: int, ca_file: Path | None) -> dict[str, object]:
    channel: dict[str, object] = {
        "name": "private-ca",
        "kind": "openai",
        "base_url": f"wss://127.0.0.1:{front_port}/v1",
        "api_key_env": "TEST_PROVIDER_KEY",
        "models": [MODEL],
    }
    if ca_file is not None:
        channel["ca_file"] = str(ca_file)
    return channel


async def test_a_channel_with_ca_file_dials_a_provider_behind_a_private_ca(pki: Pki) -> None:
    pki.issue()  # the provider's certificate this time
    provider_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    provider_tls.load_cert_chain(pki.cert, pki.key)
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        provider_port = int(provider.url.rsplit(":", 1)[1].removesuffix("/v1"))
        async with tls_front(provider_port, provider_tls) as port:
            trusted = settings_for(channels=[_provider_channel(port, pki.ca_file)])
            async with running_relay(trusted) as relay, aiohttp.ClientSession() as http:
                async with http.ws_connect(relay.realtime()) as ws:
                    assert (await ws.receive_json())["type"] == "session.created"
            assert provider.handshakes  # it went through the TLS front

            # The same provider without ca_file: the system's CAs do not know the test CA.
            untrusted = settings_for(channels=[_provider_channel(port, None)])
            async with running_relay(untrusted) as relay, aiohttp.ClientSession() as http:
                async with http.get(relay.realtime(), headers=upgrade_headers()) as resp:
                    assert resp.status == 503
                    assert (await resp.json())["error"]["code"] == "upstream_unavailable"
                failure = relay.relay.router.breakers["private-ca"].last_error
                assert failure is not None
                assert failure == "connect: TLS certificate: unable to get local issuer certificate"
