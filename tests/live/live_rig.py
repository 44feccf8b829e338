"""What the GPT-Live, translation and transcription tests share: a relay in front of the
simulated provider, keys, and the ledger as SQLite holds it."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from decimal import Decimal
from typing import Any

from openai import AsyncOpenAI

from rtrelay.config import Settings
from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, settings_for

FAST = MockOptions(realtime_pacing=0, live_usage_interval=0.3)
START: dict[str, Any] = {"model": "gpt-live-1", "instructions": "Be brief."}
CHUNK = 100 * 48  # 100 ms of pcm16 at 24 kHz
MODELS = [
    "gpt-realtime",
    "gpt-live-1",
    "gpt-realtime-translate",
    "gpt-realtime-whisper",
    "gpt-4o-transcribe",
]


def live_settings(provider: MockProvider, **sections: Any) -> Settings:
    return settings_for(
        channels=[
            {
                "name": "sim",
                "kind": "openai",
                "base_url": provider.url,
                "api_key_env": "TEST_PROVIDER_KEY",
                "models": MODELS,
            }
        ],
        auth={"mode": "keys"},
        **sections,
    )


async def new_key(relay: RunningRelay, **spec: Any) -> str:
    _, secret = await relay.relay.parts.store.create_key(KeySpec(name="live", **spec))
    return secret


def sdk(relay: RunningRelay, key: str) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, websocket_base_url=f"{relay.ws_url}/v1", max_retries=0)


async def speak(connection: Any, pcm: bytes) -> None:
    for start in range(0, len(pcm), CHUNK):
        chunk = base64.b64encode(pcm[start : start + CHUNK]).decode()
        await connection.session.input_audio.append(audio=chunk)


async def settled(relay: RunningRelay) -> None:
    """Wait for the relay to finish its sessions (the client may see the close first),
    then for their rows to reach the store."""
    async with asyncio.timeout(10):
        while relay.relay.sessions:
            await asyncio.sleep(0.02)
    await relay.relay.parts.writer.flush()


def usage_rows(relay: RunningRelay) -> list[tuple[str, str, Decimal, Decimal | None]]:
    """(ref, unit, seconds, cost) of every usage row, in the order written (SQLite keeps
    exact decimals as integers of 1e-10)."""
    path = relay.relay.settings.store.url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT ref, unit, seconds, cost_usd FROM rtrelay_usage ORDER BY id"
        ).fetchall()
    return [(str(r), str(u), _exact(s), None if c is None else _exact(c)) for r, u, s, c in rows]


def _exact(stored: int) -> Decimal:
    return Decimal(stored).scaleb(-10)


def session_rows(relay: RunningRelay) -> list[tuple[str, str | None]]:
    path = relay.relay.settings.store.url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT model, error_code FROM rtrelay_sessions").fetchall()
    return [(str(m), e) for m, e in rows]
