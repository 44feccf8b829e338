"""The gate's key and spend caches: a burst of handshakes costs one database read each."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from rtrelay.gate.admission import Gate
from rtrelay.gate.limits import LeaseKeeper, MemoryLeases, MemoryRateLimiter
from rtrelay.ledger import KeyRecord, KeySpec, Store, open_store
from rtrelay.ledger.writer import SpendBook


class CountingStore:
    """The real SQLite store, counting the reads admission makes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.finds = 0
        self.spend_reads = 0

    async def find_key(self, secret: str) -> KeyRecord | None:
        self.finds += 1
        return await self.store.find_key(secret)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        return await self.store.get_key(key_id)

    async def spent_usd(self, key_id: str) -> Decimal:
        self.spend_reads += 1
        return await self.store.spent_usd(key_id)


async def test_a_burst_of_handshakes_reads_the_key_and_its_spend_once(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    try:
        _, secret = await store.create_key(KeySpec(name="k", budget_usd=Decimal(5)))
        counting = CountingStore(store)
        gate = Gate(
            keys=counting,
            leases=LeaseKeeper(MemoryLeases()),
            rate=MemoryRateLimiter(),
            spend=SpendBook(counting),  # type: ignore[arg-type]
        )

        async def handshake() -> None:
            key, _ = await gate.authenticate(secret)
            admission = await gate.admit_session(key, "gpt-realtime")
            await gate.release(admission)

        await asyncio.gather(*(handshake() for _ in range(40)))
        assert (counting.finds, counting.spend_reads) == (1, 1)
    finally:
        await store.close()
