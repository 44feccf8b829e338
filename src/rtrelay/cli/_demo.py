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
import sys
from typing import Final

from aiohttp import web

from rtrelay.config import Admin, Auth, Channel, Settings
from rtrelay.edge.app import RELAY
from rtrelay.ledger.keys import KeySpec

__all__ = ["DEMO_MODELS", "demo_settings", "print_demo_banner"]

DEMO_MODELS: Final = (
    "gpt-realtime",
    "gpt-realtime-mini",
    "gpt-4o-realtime-preview",
    "gpt-4o-mini-realtime-preview",
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


async def print_demo_banner(app: web.Application, address: str) -> None:
    """Replace the previous demo key with a new one and print it with ready-to-run snippets."""
    store = app[RELAY].parts.store
    for old in await store.list_keys():
        if old.name == DEMO_KEY_NAME and old.revoked_at is None:
            await store.revoke_key(old.id)
    _, secret = await store.create_key(KeySpec(name=DEMO_KEY_NAME))
    print(_console_line(app[RELAY].settings, f"http://{address}"), file=sys.stdout)
    print(_BANNER.format(address=address, key=secret), file=sys.stdout, flush=True)


def _console_line(settings: Settings, base: str) -> str:
    """Where the console is and, when the demo made the admin token up, that token (once)."""
    if settings.admin.token_env != DEMO_ADMIN_TOKEN_ENV:
        return f"\nconsole    {base}/console   (sign in with ${settings.admin.token_env})"
    token = os.environ[DEMO_ADMIN_TOKEN_ENV]
    return f"\nconsole    {base}/console   admin token {token}   (shown once; admin API too)"


_BANNER: Final = """
rtrelay demo: relaying to a simulated provider (no provider key needed)

  endpoint   ws://{address}/v1/realtime?model=gpt-realtime
  demo key   {key}      (shown once; a new one is made at each start)
  more keys  rtrelay keys create --name NAME   (same directory and config: the same store)

Python (pip install 'openai[realtime]'):

    import asyncio
    from openai import AsyncOpenAI

    async def main():
        client = AsyncOpenAI(api_key="{key}", websocket_base_url="ws://{address}/v1")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.session.update(session={{"type": "realtime", "output_modalities": ["text"]}})
            await conn.conversation.item.create(item={{"type": "message", "role": "user",
                "content": [{{"type": "input_text", "text": "Say hello!"}}]}})
            await conn.response.create()
            async for event in conn:
                print(event.type)
                if event.type == "response.done":
                    break

    asyncio.run(main())

Browser (devtools console):

    const ws = new WebSocket("ws://{address}/v1/realtime?model=gpt-realtime",
        ["realtime", "openai-insecure-api-key.{key}"]);
    ws.onmessage = (e) => console.log(JSON.parse(e.data).type);

Or try it from a terminal:  rtrelay probe ws://{address}/v1/realtime --key {key}
Ctrl-C stops the relay (live sessions get a drain window first).
"""
