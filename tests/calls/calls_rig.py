"""What the WebRTC call tests share: the rig (provider, relay, key) and waiting for a row."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rtrelay.ledger.records import SessionRow
from rtrelay.mock import MockProvider
from rtrelay.wire import CALLS_PATH
from support import RunningRelay

__all__ = ["Rig", "settled"]


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
