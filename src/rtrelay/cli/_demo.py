"""``rtrelay serve --demo``: everything embedded, nothing to configure.

A simulated provider runs in-process as the only channel, and a fresh demo key is
created (and shown once) at start. State lives in the configured store, by default
the same ``./rtrelay.db`` every other command uses: ``rtrelay keys create`` run
beside the demo makes a key the demo accepts.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from aiohttp import web

from rtrelay.config import Admin, Auth, Channel, Settings
from rtrelay.edge.app import RELAY
from rtrelay.ledger.keys import KeySpec

__all__ = ["DEMO_MODELS", "demo_banner", "demo_settings", "print_demo_banner", "rtrelay_command"]

DEMO_MODELS: Final = (
    "gpt-realtime",
    "gpt-realtime-mini",
    "gpt-4o-realtime-preview",
    "gpt-4o-mini-realtime-preview",
    "gpt-live-1",  # GPT-Live, /v1/live/sessions
    "gpt-realtime-translate",  # /v1/realtime/translations
    "gpt-realtime-whisper",  # duration-priced transcription models
    "gpt-live-transcribe",
)
DEMO_KEY_NAME: Final = "demo"
DEMO_ADMIN_TOKEN_ENV: Final = "RTRELAY_DEMO_ADMIN_TOKEN"
"""Holds the admin token the demo makes up when none is set (the relay and its workers read it)."""


def demo_settings(settings: Settings) -> Settings:
    """``settings`` with the simulated provider as the only channel, and keys required."""
    channel = Channel(
        name="simulated",
        kind="mock",
        models={m: m for m in DEMO_MODELS},
        shapes=("ga", "beta"),
    )
    admin = settings.admin
    if not os.environ.get(admin.token_env):  # the console and admin API on, with a new token
        os.environ[DEMO_ADMIN_TOKEN_ENV] = secrets.token_urlsafe(24)
        admin = Admin(token_env=DEMO_ADMIN_TOKEN_ENV)
    return dataclasses.replace(settings, channels=(channel,), auth=Auth(mode="keys"), admin=admin)


async def print_demo_banner(app: web.Application, address: str, *, tls: bool = False) -> None:
    """Replace the previous demo key with a new one and print it with ready-to-run snippets."""
    store = app[RELAY].parts.store
    for old in await store.list_keys():
        if old.name == DEMO_KEY_NAME and old.revoked_at is None:
            await store.revoke_key(old.id)
    _, secret = await store.create_key(KeySpec(name=DEMO_KEY_NAME))
    base = f"{'https' if tls else 'http'}://{address}"
    print(_console_line(app[RELAY].settings, base), file=sys.stdout)
    print(demo_banner(address, secret, tls=tls), file=sys.stdout, flush=True)


def demo_banner(address: str, key: str, *, tls: bool = False, command: str | None = None) -> str:
    """The banner's text: the endpoint, the key, and snippets that run as printed."""
    command = command or rtrelay_command()
    on_path = command == "rtrelay"
    example = _example_server()
    return _BANNER.format(
        address=address,
        key=key,
        ws="wss" if tls else "ws",
        http="https" if tls else "http",
        rtrelay=command,
        path_hint="" if on_path else _PATH_HINT.format(bin=Path(command).parent),
        example=example,
    )


def rtrelay_command(
    *,
    executable: str = sys.executable,
    which: Callable[[str], str | None] = shutil.which,
    cwd: Path | None = None,
) -> str:
    """How the reader can run this very ``rtrelay``: ``rtrelay`` when that name on their
    PATH is this install, else its path (relative to ``cwd`` when below it).

    ``scripts/demo`` runs ``.venv/bin/rtrelay`` without putting the venv on the PATH, so
    a bare ``rtrelay`` in the banner would be "command not found" (or another install).
    """
    script = Path(executable).with_name("rtrelay")
    if not script.exists():
        return "rtrelay"
    found = which("rtrelay")
    if found is not None and Path(found).resolve() == script.resolve():
        return "rtrelay"
    try:
        shown = script.relative_to(cwd or Path.cwd())
    except ValueError:
        return str(script)
    return str(shown) if len(shown.parts) > 1 else f"./{shown}"  # a bare name means PATH


def _example_server() -> str:
    """How to start ``examples/browser-token/server.py`` from a checkout (else where it is)."""
    example = Path(__file__).resolve().parents[3] / "examples" / "browser-token" / "server.py"
    if not example.exists():  # an installed package: the example lives in the repository
        return "python3 examples/browser-token/server.py   (in rtrelay's repository)"
    try:
        shown = str(example.relative_to(Path.cwd()))
    except ValueError:
        shown = str(example)
    return f"python3 {shown}"


_PATH_HINT: Final = "  (rtrelay is not on your PATH: `. {bin}/activate` puts it there)\n"


def _console_line(settings: Settings, base: str) -> str:
    """Where the console is and, when the demo made the admin token up, that token (once)."""
    if settings.admin.token_env != DEMO_ADMIN_TOKEN_ENV:
        return f"\nconsole    {base}/console   (sign in with ${settings.admin.token_env})"
    token = os.environ[DEMO_ADMIN_TOKEN_ENV]
    return f"\nconsole    {base}/console   admin token {token}   (shown once; admin API too)"


_BANNER: Final = """
rtrelay demo: relaying to a simulated provider (no provider key needed)

  endpoint   {ws}://{address}/v1/realtime?model=gpt-realtime
  demo key   {key}      (shown once; a new one is made at each start)
  try it     {rtrelay} probe {ws}://{address}/v1 --key {key}
  more keys  {rtrelay} keys create --name NAME   (same directory and config: the same store)
{path_hint}
Python, GA shape (pip install 'openai[realtime]'):

    import asyncio
    from openai import AsyncOpenAI
    from websockets.exceptions import InvalidStatus

    async def main():
        client = AsyncOpenAI(api_key="{key}", websocket_base_url="{ws}://{address}/v1")
        try:
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.session.update(
                    session={{"type": "realtime", "output_modalities": ["text"]}})
                await conn.conversation.item.create(item={{"type": "message", "role": "user",
                    "content": [{{"type": "input_text", "text": "Say hello!"}}]}})
                await conn.response.create()
                async for event in conn:
                    if event.type == "error":
                        print("error:", event.error.code, event.error.message)
                    elif event.type == "response.output_text.delta":
                        print(event.delta, end="", flush=True)
                    elif event.type == "response.done":
                        print()
                        break
        except InvalidStatus as e:  # refused before the session: rtrelay's JSON says why
            print("refused:", e.response.status_code, e.response.body.decode())

    asyncio.run(main())

Python, beta shape (clients written for the beta API; the GA snippet's session
fields are "Unknown parameter" there):

    import asyncio
    from openai import AsyncOpenAI

    async def main_beta():
        client = AsyncOpenAI(api_key="{key}", websocket_base_url="{ws}://{address}/v1")
        async with client.beta.realtime.connect(model="gpt-realtime") as conn:
            await conn.session.update(session={{"modalities": ["text"]}})
            await conn.conversation.item.create(item={{"type": "message", "role": "user",
                "content": [{{"type": "input_text", "text": "Say hello!"}}]}})
            await conn.response.create()
            async for event in conn:
                if event.type == "error":
                    print("error:", event.error.code, event.error.message)
                elif event.type == "response.text.delta":
                    print(event.delta, end="", flush=True)
                elif event.type == "response.done":
                    print()
                    break

    asyncio.run(main_beta())

Python, GPT-Live (/v1/live/sessions: the model goes in session.start; billed by the
second from the provider's usage reports):

    import asyncio, base64, math, struct
    from openai import AsyncOpenAI

    async def main_live():
        client = AsyncOpenAI(api_key="{key}", websocket_base_url="{ws}://{address}/v1")
        speech = b"".join(struct.pack("<h", int(9000 * math.sin(i / 6))) for i in range(24000))
        async with client.live.connect() as conn:  # 1 s of "speech" then 1 s of silence
            await conn.session.start(session={{"model": "gpt-live-1"}})
            for i in range(0, 96000, 4800):  # 100 ms of 24 kHz pcm16 at a time
                chunk = (speech + bytes(48000))[i : i + 4800]
                await conn.session.input_audio.append(audio=base64.b64encode(chunk).decode())
            async for event in conn:
                if event.type == "error":
                    print("error:", event.error.code, event.error.message)
                    break
                elif event.type == "session.output_transcript.delta":
                    print(event.delta, end="", flush=True)
                elif event.type == "session.usage.updated":
                    print(f"\\n[{{event.usage.seconds:.1f}} s of audio so far]")
                    break

    asyncio.run(main_live())

Browser: the page never holds the rk_ key. Your server mints a short-lived token
    POST {http}://{address}/v1/realtime/client_secrets   Authorization: Bearer <rk_ key>
    {{"session": {{"type": "realtime", "model": "gpt-realtime"}}}}   ->  {{"value": "ek_…", …}}
and the page connects with it:
    const ws = new WebSocket("{ws}://{address}/v1/realtime?model=gpt-realtime",
        ["realtime", "openai-insecure-api-key." + token]);
    ws.onmessage = (e) => {{ const event = JSON.parse(e.data);
        console.log(event.type === "error" ? event.error.message : event.type); }};
A page and a 60-line server that do this:
    RTRELAY_KEY={key} RTRELAY_URL={http}://{address} {example}

Browser over WebRTC (OpenAI's guide; the same ek_ token as `token`): voice on the
media tracks, events on the "oai-events" data channel; rtrelay meters every call:
    const pc = new RTCPeerConnection();
    const audio = new Audio();
    audio.autoplay = true;
    pc.ontrack = (e) => {{ audio.srcObject = e.streams[0]; }};
    const mic = await navigator.mediaDevices.getUserMedia({{audio: true}});
    pc.addTrack(mic.getTracks()[0]);
    const dc = pc.createDataChannel("oai-events");
    dc.onmessage = (e) => {{ const event = JSON.parse(e.data);
        console.log(event.type === "error" ? event.error.message : event.type); }};
    await pc.setLocalDescription(await pc.createOffer());
    const answer = await fetch("{http}://{address}/v1/realtime/calls?model=gpt-realtime", {{
        method: "POST", body: pc.localDescription.sdp,
        headers: {{Authorization: `Bearer ${{token}}`, "Content-Type": "application/sdp"}}}});
    if (!answer.ok) throw new Error(await answer.text());  // rtrelay's JSON says why
    await pc.setRemoteDescription({{type: "answer", sdp: await answer.text()}});

Ctrl-C stops the relay (live sessions get a drain window first).
"""
