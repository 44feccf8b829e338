"""The gate over a store that fails or hangs: limits_unavailable, bounded in time, then recovery.

The real SQLite store behind a switch (as in test_key_cache.py): ``broken`` makes each read
raise, ``hung`` makes it wait forever, as a black-holed database would. The real PostgreSQL
path, through a link the test cuts, is tests/gate/test_limits_outage_functional.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from rtrelay.errors import LimitsUnavailable
from rtrelay.gate.admission import STORE_RETRY_AFTER, Gate
from rtrelay.gate.limits import LeaseKeeper, MemoryLeases, MemoryRateLimiter
from rtrelay.ledger import KeyRecord, KeySpec, Store, open_store
from rtrelay.ledger.writer import SpendBook


class SwitchedStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.mode = "ok"

    async def _gate(self) -> None:
        if self.mode == "broken":
            raise ConnectionRefusedError("connection refused")
        if self.mode == "hung":
            await asyncio.Event().wait()

    async def find_key(self, secret: str) -> KeyRecord | None:
        await self._gate()
        return await self.store.find_key(secret)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        await self._gate()
        return await self.store.get_key(key_id)

    async def spent_usd(self, key_id: str) -> Decimal:
        await self._gate()
        return await self.store.spent_usd(key_id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    try:
        yield opened
    finally:
        await opened.close()


def gate_over(switched: SwitchedStore) -> Gate:
    return Gate(
        keys=switched,
        leases=LeaseKeeper(MemoryLeases()),
        rate=MemoryRateLimiter(),
        spend=SpendBook(switched, refresh_seconds=0.0, read_timeout=0.2),  # type: ignore[arg-type]
        cache_seconds=0.0,  # every handshake reads the store
        store_timeout=0.2,
    )


@pytest.mark.parametrize("mode", ["broken", "hung"])
async def test_key_lookup_and_spend_read_failing_are_limits_unavailable(
    store: Store, mode: str
) -> None:
    _, secret = await store.create_key(KeySpec(name="k", budget_usd=Decimal(5)))
    switched = SwitchedStore(store)
    gate = gate_over(switched)
    key, _ = await gate.authenticate(secret)
    switched.mode = mode
    async with asyncio.timeout(10):  # a hung store is cut off by store_timeout, not this
        with pytest.raises(LimitsUnavailable) as lookup:
            await gate.authenticate(secret)
        with pytest.raises(LimitsUnavailable) as spend:
            await gate.admit_session(key, "gpt-realtime")
    for refused in (lookup.value, spend.value):
        assert (refused.http_status, refused.close_code) == (503, 4503)
        assert refused.retry_after == STORE_RETRY_AFTER
        assert "store" in refused.message
    switched.mode = "ok"
    key, _ = await gate.authenticate(secret)
    admission = await gate.admit_session(key, "gpt-realtime")  # the lease of the failed
    await gate.release(admission)  # attempt was given back: this one is admitted


async def test_a_broken_store_is_logged_once_per_outage(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rtrelay.gate")
    _, secret = await store.create_key(KeySpec(name="k"))
    switched = SwitchedStore(store)
    gate = gate_over(switched)
    switched.mode = "broken"
    for _ in range(5):
        with pytest.raises(LimitsUnavailable):
            await gate.authenticate(secret)
    switched.mode = "ok"
    await gate.authenticate(secret)
    messages = [r.getMessage() for r in caplog.records if r.name == "rtrelay.gate"]
    assert sum("store unreachable" in m for m in messages) == 1
    assert sum("store reachable again" in m for m in messages) == 1
