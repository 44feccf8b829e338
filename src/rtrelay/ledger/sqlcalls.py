"""``SqlCalls``: the WebRTC call registry (``rtrelay_calls``), one row per call.

A relay call id (``rcall_…``) is what a browser and an app server see; the provider's
id stays here. Any relay sharing the store resolves one (app sidebands and call
controls may land on another process), and a relay that restarts finds the calls it
owned by ``node`` (``live_calls``) so none of them runs on unmetered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from rtrelay.ledger.engine import begin_write
from rtrelay.ledger.records import CallRecord
from rtrelay.ledger.schema import calls

__all__ = ["SqlCalls"]


class SqlCalls:
    """The call registry over the shared engine (written at call setup and end only)."""

    _engine: AsyncEngine

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._calls_clock = clock

    async def register_call(self, call: CallRecord) -> None:
        async with begin_write(self._engine) as conn:
            await conn.execute(calls.insert().values(_call_row(call)))

    async def find_call(self, call_id: str) -> CallRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(calls).where(calls.c.id == call_id))).first()
        return None if row is None else _call_of(row)

    async def end_call(self, call_id: str) -> bool:
        """Mark a call ended; ``False`` if it was not live (ended twice, or unknown)."""
        update = (
            calls.update()
            .where(calls.c.id == call_id, calls.c.state == "live")
            .values(state="ended", ended_at=self._calls_clock())
        )
        async with begin_write(self._engine) as conn:
            result = await conn.execute(update)
        return bool(result.rowcount)

    async def live_calls(self, *, node: str) -> list[CallRecord]:
        query = sa.select(calls).where(calls.c.node == node, calls.c.state == "live")
        async with self._engine.connect() as conn:
            return [_call_of(row) for row in await conn.execute(query)]


def _call_row(call: CallRecord) -> dict[str, Any]:
    return {
        "id": call.call_id,
        "provider_call_id": call.provider_call_id,
        "channel": call.channel,
        "model": call.model,
        "key_id": call.key_id,
        "session_id": call.session_id,
        "node": call.node,
        "pid": call.pid,
        "state": call.state,
        "created_at": call.created_at,
        "ended_at": call.ended_at,
    }


def _call_of(row: Row[Any]) -> CallRecord:
    return CallRecord(
        call_id=row.id,
        provider_call_id=row.provider_call_id,
        channel=row.channel,
        model=row.model,
        key_id=row.key_id,
        session_id=row.session_id,
        node=row.node,
        pid=row.pid,
        state=row.state,
        created_at=row.created_at,
        ended_at=row.ended_at,
    )
