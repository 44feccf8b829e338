"""What the WebRTC call tests share: the rig (provider, relay, key) and waiting for a row."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.records import SessionRow
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.wire import CALLS_PATH
from support import RunningRelay, mock_channel_settings, running_relay

__all__ = ["Rig", "open_rig", "settled"]


@dataclass
class Rig:
    provider: MockProvider
    relay: RunningRelay
    key: str

    @property
    def calls_url(self) -> str:
        return self.relay.url + CALLS_PATH


async def settled(rig: Rig, session_id: str, timeout: float = 10.0) -> SessionRow:
    """The session row once the call has ended and its rows are written."""
    store, writer = rig.relay.relay.parts.store, rig.relay.relay.parts.writer
    async with asyncio.timeout(timeout):
        while True:
            await writer.flush()
            row = await store.session(session_id)
            if row is not None and row.status != "live":
                return row
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def open_rig() -> AsyncIterator[Rig]:
    """The rig of tests/calls/conftest.py, for tests elsewhere (the probe's, the client's)."""
    options = MockOptions(realtime_pacing=0, reply_audio_ms=400)
    async with MockProvider(options) as provider:
        async with running_relay(mock_channel_settings(provider.url)) as relay:
            _, key = await relay.relay.parts.store.create_key(KeySpec(name="calls"))
            yield Rig(provider, relay, key)
